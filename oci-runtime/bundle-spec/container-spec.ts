// The one spec builder: every config.json berth writes, for pod containers and for the pod's
// infra process, is made here from plain domain input (strings, numbers, arrays; no protobuf).
// cri-server maps CRI messages to these inputs (cri-server/container/spec-input.ts) and adds
// nothing of its own; later edits (CDI devices, berth's prepared mounts, image volumes) go
// through their own oci-runtime modules.
import { containerCgroupsPath } from "../cgroups/paths.ts";
import { applySecurityContext, type ResolvedSecurity } from "../security/security-context.ts";
import { defaultSpec, DEFAULT_PATH } from "./default-spec.ts";
import { withDevices, type CriDevice, type DeviceHost } from "./devices.ts";
import { withAnnotations, withCgroupsPath } from "./misc.ts";
import { withCriMounts, withPodFiles, type CriMount, type MountHost } from "./mounts.ts";
import { infraNamespaces, withNamespaces, withUserNamespaceMappings, type ModeName, type PodUserns } from "./namespaces.ts";
import { withCwd, withEnv, withProcessArgs, withTerminal } from "./process.ts";
import { clampOomScoreAdj, ownOomScoreAdj, withOomScoreAdj, withResources, type CriResources } from "./resources.ts";
import { compose, type Spec } from "./types.ts";
import type { ResolvedUser } from "./user.ts";

/** The parts of an image config a container spec uses. */
export interface ImageConfigInput {
  entrypoint?: string[];
  cmd?: string[];
  env?: string[];
  workingDir?: string;
}

/** The pod a container joins: its infra process, pinned namespaces, files and cgroup parent. */
export interface PodSpecInput {
  id: string;
  /** The infra (catatonit) pid whose /proc/<pid>/ns/* the container joins; 0 for a pod without one. */
  infraPid: number;
  /** The pod's pinned IPC and UTS namespaces (a pod without an infra process). */
  ipcPath?: string;
  utsPath?: string;
  /** The pinned network namespace ("" with host network). */
  netnsPath: string;
  network: ModeName;
  ipc: ModeName;
  pid: ModeName;
  /** Directory holding hosts, resolv.conf and hostname. */
  podDir: string;
  /** The pod's /dev/shm on the host ("" for host IPC). */
  shmPath: string;
  hostname: string;
  /** CRI cgroup_parent as given ("" for none); checked by cgroups/paths.ts. */
  cgroupParent: string;
  /** The pod's own user namespace; absent: the host's. */
  userns?: PodUserns;
}

/** What the host offers a spec (detected once by the caller). */
export interface HostSpecInput {
  cgroupV2: boolean;
  shmSize: number;
  supportsRecursiveReadOnly: boolean;
  /** Lowest oom_score_adj berthd may set; default its own. */
  minOomScoreAdj?: number;
  mountHost?: MountHost;
  deviceHost?: DeviceHost;
}

export interface ContainerSpecInput {
  id: string;
  /** The container's metadata name. */
  name: string;
  /** The image reference as requested (annotation io.kubernetes.cri.image-name). */
  imageName: string;
  /** Host path of the mounted rootfs. */
  rootfs: string;
  image: ImageConfigInput;
  command: string[];
  args: string[];
  workingDir: string;
  env: { key: string; value: string }[];
  tty: boolean;
  /** Resolved against the container's own /etc/passwd and /etc/group. */
  user: ResolvedUser;
  mounts: CriMount[];
  devices: CriDevice[];
  resources: CriResources;
  oomScoreAdj: number;
  /** The container's own pid namespace option, when it sets one (else the pod's). */
  pidMode?: ModeName;
  /** pid of the target container for pid namespace TARGET. */
  targetPid?: number;
  annotations: Record<string, string>;
  /** Resolved and validated (oci-runtime/security); also says whether the rootfs is read-only. */
  security: ResolvedSecurity;
  pod: PodSpecInput;
  host: HostSpecInput;
}

/** The spec of a pod container. */
export async function buildContainerSpec(i: ContainerSpecInput): Promise<Spec> {
  const { pod } = i;
  const spec = defaultSpec({ rootfs: i.rootfs, privileged: i.security.privileged, shmSizeBytes: i.host.shmSize });
  await compose(spec, undefined, [
    withProcessArgs({ command: i.command, args: i.args, imageEntrypoint: i.image.entrypoint ?? [], imageCmd: i.image.cmd ?? [], containerName: i.name || i.id }),
    withEnv({ imageEnv: i.image.env ?? [], env: i.env, hostname: pod.hostname }),
    withCwd({ workingDir: i.workingDir, imageWorkingDir: i.image.workingDir ?? "" }),
    withTerminal(i.tty),
    (s) => {
      s.process!.user = { uid: i.user.uid, gid: i.user.gid, additionalGids: i.user.additionalGids, ...(i.user.username ? { username: i.user.username } : {}) };
      if (!s.process!.env!.some((e) => e.startsWith("HOME="))) s.process!.env!.push(`HOME=${i.user.home}`);
    },
    withPodFiles({
      hostsPath: `${pod.podDir}/hosts`,
      resolvPath: `${pod.podDir}/resolv.conf`,
      hostnamePath: `${pod.podDir}/hostname`,
      ...(pod.shmPath ? { shmPath: pod.shmPath } : {}),
      // containerd's rule: a read-only rootfs gets the pod files read-only too.
      readonly: i.security.readonlyRootfs,
    }),
    withCriMounts(i.mounts, { supportsRecursiveReadOnly: i.host.supportsRecursiveReadOnly, ...(i.host.mountHost ? { host: i.host.mountHost } : {}) }),
    withDevices(i.devices, i.host.deviceHost),
    withNamespaces({
      infraPid: pod.infraPid,
      ...(pod.ipcPath ? { ipcPath: pod.ipcPath } : {}),
      ...(pod.utsPath ? { utsPath: pod.utsPath } : {}),
      netnsPath: pod.netnsPath,
      network: pod.network,
      ipc: pod.ipc,
      // The pod's UTS namespace follows its network namespace (host network: host UTS).
      uts: pod.network === "NODE" ? "NODE" : "POD",
      pid: i.pidMode ?? pod.pid,
      ...(i.targetPid ? { targetPid: i.targetPid } : {}),
      cgroupNamespace: i.host.cgroupV2,
      // A pod with its own user namespace: every container joins it (its mounts are idmapped by berth).
      ...(pod.userns ? { usernsPath: pod.userns.path } : {}),
    }),
    withUserNamespaceMappings(pod.userns),
    withResources(i.resources, { cgroupV2: i.host.cgroupV2, ...(i.host.minOomScoreAdj !== undefined ? { minOomScoreAdj: i.host.minOomScoreAdj } : {}) }),
    withOomScoreAdj(i.oomScoreAdj, i.host.minOomScoreAdj),
    withCgroupsPath(containerCgroupsPath(pod.cgroupParent, i.id)),
    withAnnotations({
      ...i.annotations,
      "io.kubernetes.cri.container-type": "container",
      "io.kubernetes.cri.container-name": i.name,
      "io.kubernetes.cri.sandbox-id": pod.id,
      "io.kubernetes.cri.image-name": i.imageName,
    }),
    applySecurityContext(i.security),
  ]);
  return spec;
}

/** The pause process should be the last the OOM killer picks (as kubelet's -998 for pod infra). */
export const INFRA_OOM_SCORE_ADJ = -998;

export interface InfraSpecInput {
  /** The sandbox id. */
  id: string;
  /** Host path of the infra rootfs (berth's catatonit rootfs or its idmapped clone). */
  rootfs: string;
  /** "" leaves the hostname unset (host network). */
  hostname: string;
  netnsPath: string;
  network: ModeName;
  ipc: ModeName;
  pid: ModeName;
  /** Validated pod sysctls. */
  sysctls: Record<string, string>;
  /** CRI cgroup_parent as given ("" for none). */
  cgroupParent: string;
  userns?: PodUserns;
  /** The pod's run_as_user / run_as_group and supplemental groups (the gid first). */
  user: { uid: number; gid: number; additionalGids: number[] };
  security: ResolvedSecurity;
  minOomScoreAdj?: number;
}

/**
 * The spec of a pod's infra process: catatonit in pause mode holding the pod's pid, ipc and uts
 * namespaces, on a read-only rootfs, without capabilities.
 */
export async function buildInfraSpec(i: InfraSpecInput): Promise<Spec> {
  const spec: Spec = {
    ociVersion: "1.0.2",
    process: {
      terminal: false,
      user: { uid: i.user.uid, gid: i.user.gid, additionalGids: i.user.additionalGids },
      args: ["/catatonit", "-P"],
      env: [`PATH=${DEFAULT_PATH}`],
      cwd: "/",
      noNewPrivileges: true,
      // The kernel refuses oom_score_adj below berthd's own value: clamp (containerd's restrict_oom_score_adj).
      oomScoreAdj: clampOomScoreAdj(INFRA_OOM_SCORE_ADJ, i.minOomScoreAdj ?? ownOomScoreAdj()),
    },
    root: { path: i.rootfs, readonly: true },
    mounts: [
      { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] },
      { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
      { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
    ],
    annotations: { "io.kubernetes.cri.container-type": "sandbox", "io.kubernetes.cri.sandbox-id": i.id },
    linux: {
      namespaces: infraNamespaces({ network: i.network, ipc: i.ipc, pid: i.pid, netnsPath: i.netnsPath, ...(i.userns ? { usernsPath: i.userns.path } : {}) }),
      sysctl: { ...i.sysctls },
      cgroupsPath: containerCgroupsPath(i.cgroupParent, i.id),
      resources: { devices: [{ allow: false, access: "rwm" }], cpu: { shares: 2 } },
      maskedPaths: [],
      readonlyPaths: [],
    },
  };
  if (i.network !== "NODE" && i.hostname) spec.hostname = i.hostname;
  await compose(spec, undefined, [
    withUserNamespaceMappings(i.userns),
    applySecurityContext({ ...i.security, readonlyRootfs: true }),
    // The pause process needs no capabilities at all.
    (s) => { s.process!.capabilities = { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] }; },
  ]);
  return spec;
}
