// One call that composes every option for a pod container, in the order they must apply.
import { containerCgroupsPath } from "../cgroups/paths.ts";
import { defaultSpec } from "./default-spec.ts";
import { withDevices, type CriDevice, type DeviceHost } from "./devices.ts";
import { withAnnotations, withCgroupsPath, withReadonlyRootfs } from "./misc.ts";
import { withCriMounts, withPodFiles, type CriMount, type MountHost, type PodFiles } from "./mounts.ts";
import { withNamespaces, type ContainerNamespaces } from "./namespaces.ts";
import { withCwd, withEnv, withProcessArgs, withTerminal } from "./process.ts";
import { withResources, type CriResources } from "./resources.ts";
import { compose, type Spec, type SpecOpt } from "./types.ts";
import { withUser, type UserInput } from "./user.ts";

export interface ImageConfigInput {
  entrypoint?: string[];
  cmd?: string[];
  env?: string[];
  workingDir?: string;
  user?: string;
}

export interface ContainerSpecInput {
  id: string;
  name: string;
  /** Host path of the container's mounted rootfs (used as root.path and to read /etc/passwd). */
  rootfs: string;
  image: ImageConfigInput;
  command?: string[];
  args?: string[];
  workingDir?: string;
  env?: { key: string; value: string }[];
  tty?: boolean;
  /** CRI security context user fields (the image's User is taken from `image.user`). */
  user?: Omit<UserInput, "imageUser">;
  readonlyRootfs?: boolean;
  privileged?: boolean;
  mounts?: CriMount[];
  devices?: CriDevice[];
  resources?: CriResources;
  annotations?: Record<string, string>;
  /** The pod: namespaces to join, files to bind, cgroup parent, hostname. */
  pod: {
    namespaces: ContainerNamespaces;
    files: PodFiles;
    cgroupParent?: string;
    hostname?: string;
  };
  host: {
    cgroupV2: boolean;
    minOomScoreAdj?: number;
    supportsRecursiveReadOnly?: boolean;
    mountHost?: MountHost;
    deviceHost?: DeviceHost;
  };
  /** Applied last: seccomp, capabilities, masked paths, apparmor (built elsewhere). */
  extraOpts?: SpecOpt<unknown>[];
}

export async function buildContainerSpec(i: ContainerSpecInput): Promise<Spec> {
  const spec = defaultSpec({ rootfs: i.rootfs, privileged: i.privileged });
  return compose(spec, undefined, [
    withProcessArgs({ command: i.command, args: i.args, imageEntrypoint: i.image.entrypoint, imageCmd: i.image.cmd, containerName: i.name }),
    withEnv({ imageEnv: i.image.env, env: i.env, hostname: i.pod.hostname }),
    withCwd({ workingDir: i.workingDir, imageWorkingDir: i.image.workingDir }),
    withTerminal(i.tty ?? false),
    withUser(i.rootfs, { ...i.user, imageUser: i.image.user }),
    withPodFiles({ ...i.pod.files, readonly: i.pod.files.readonly ?? i.readonlyRootfs }),
    withCriMounts(i.mounts ?? [], { host: i.host.mountHost, supportsRecursiveReadOnly: i.host.supportsRecursiveReadOnly }),
    withDevices(i.devices ?? [], i.host.deviceHost),
    withNamespaces(i.pod.namespaces),
    withResources(i.resources ?? {}, { cgroupV2: i.host.cgroupV2, minOomScoreAdj: i.host.minOomScoreAdj }),
    withCgroupsPath(containerCgroupsPath(i.pod.cgroupParent, i.id)),
    withReadonlyRootfs(i.readonlyRootfs ?? false),
    withAnnotations(i.annotations ?? {}),
    ...(i.extraOpts ?? []),
  ]);
}
