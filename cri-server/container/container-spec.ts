// CRI ContainerConfig -> OCI runtime spec: picks the oci-runtime spec options for a
// container and applies them in order. Pure mapping of CRI fields; every option
// itself lives (and is tested) in oci-runtime/spec.
import {
  NamespaceMode, type ContainerConfig, type LinuxContainerResources, type PodSandboxConfig,
} from "../../proto/gen/runtime/v1/api_pb.js";
import {
  compose, defaultSpec, withAnnotations, withCgroupsPath, withCriMounts, withCwd, withDevices, withEnv,
  withNamespaces, withOomScoreAdj, withPodFiles, withProcessArgs, withResources, withRlimits, withTerminal,
  resolveUserInRootfs, type CriResources, type ResolvedUser, type Spec,
} from "../../oci-runtime/index.ts";
import { applySecurityContext, resolveSecurityContext, type ResolvedSecurity } from "../../oci-runtime/security/index.ts";
import { withUserNamespaceMappings } from "../../oci-runtime/bundle-spec/namespaces.ts";
import { invalidArgument } from "../../oci-runtime/foundation/errdefs.ts";
import type { Image } from "../../image-service/image-service.ts";
import type { SandboxRecord } from "../sandbox/sandbox-record.ts";

/** CRI resources (proto) as the oci-runtime options take them. */
export function criResources(r: LinuxContainerResources | undefined): CriResources {
  if (!r) return {};
  return {
    cpuPeriod: r.cpuPeriod,
    cpuQuota: r.cpuQuota,
    cpuShares: r.cpuShares,
    memoryLimitInBytes: r.memoryLimitInBytes,
    memorySwapLimitInBytes: r.memorySwapLimitInBytes,
    oomScoreAdj: r.oomScoreAdj,
    cpusetCpus: r.cpusetCpus,
    cpusetMems: r.cpusetMems,
    hugepageLimits: r.hugepageLimits.map((h) => ({ pageSize: h.pageSize, limit: h.limit })),
    unified: { ...r.unified },
  };
}

/**
 * The container's seccomp fields, or the pod's when the container sets neither (as kubelet fills a
 * container's profile from the pod's); berth's configured default applies only when both are unset.
 */
export function effectiveSeccomp(cfg: ContainerConfig, pod: PodSandboxConfig): { seccomp: ContainerConfigSeccomp; seccompProfilePath: string } {
  const sc = cfg.linux?.securityContext;
  if (sc?.seccomp || sc?.seccompProfilePath) return { seccomp: sc.seccomp, seccompProfilePath: sc.seccompProfilePath ?? "" };
  const psc = pod.linux?.securityContext;
  return { seccomp: psc?.seccomp, seccompProfilePath: psc?.seccompProfilePath ?? "" };
}
type ContainerConfigSeccomp = NonNullable<NonNullable<ContainerConfig["linux"]>["securityContext"]>["seccomp"];

/** Validates the security context before anything is created (INVALID_ARGUMENT naming the field). */
export async function resolveContainerSecurity(cfg: ContainerConfig, pod: PodSandboxConfig, seccompDefault: string): Promise<ResolvedSecurity> {
  const sc = cfg.linux?.securityContext;
  return resolveSecurityContext({
    privileged: sc?.privileged ?? false,
    capabilities: sc?.capabilities,
    noNewPrivs: sc?.noNewPrivs ?? false,
    readonlyRootfs: sc?.readonlyRootfs ?? false,
    ...effectiveSeccomp(cfg, pod),
    apparmor: sc?.apparmor,
    apparmorProfile: sc?.apparmorProfile ?? "",
    maskedPaths: sc?.maskedPaths ?? [],
    readonlyPaths: sc?.readonlyPaths ?? [],
    selinuxOptions: sc?.selinuxOptions,
    podPrivileged: pod.linux?.securityContext?.privileged ?? false,
    seccompDefault,
  });
}

/** Resolves the process user against the container's own /etc/passwd and /etc/group. */
export function resolveContainerUser(cfg: ContainerConfig, image: Image, rootfs: string): Promise<ResolvedUser> {
  const sc = cfg.linux?.securityContext;
  return resolveUserInRootfs(rootfs, {
    ...(sc?.runAsUser ? { runAsUser: Number(sc.runAsUser.value) } : {}),
    ...(sc?.runAsUsername ? { runAsUsername: sc.runAsUsername } : {}),
    ...(sc?.runAsGroup ? { runAsGroup: Number(sc.runAsGroup.value) } : {}),
    ...(image.config.User ? { imageUser: image.config.User } : {}),
    supplementalGroups: (sc?.supplementalGroups ?? []).map(Number),
    supplementalGroupsPolicy: sc?.supplementalGroupsPolicy === 1 ? "Strict" : "Merge",
  });
}

export interface ContainerSpecInput {
  id: string;
  cfg: ContainerConfig;
  pod: PodSandboxConfig;
  sandbox: SandboxRecord;
  image: Image;
  /** Absolute path of the mounted rootfs. */
  rootfs: string;
  security: ResolvedSecurity;
  user: ResolvedUser;
  cgroupsPath: string;
  cgroupV2: boolean;
  shmSize: number;
  /** pid of the target container for pid namespace TARGET. */
  targetPid?: number;
  supportsRecursiveReadOnly: boolean;
}

/**
 * A container's userns_options, when set, must name its pod's user namespace (kubelet repeats the
 * pod's): the same mode and mappings. Containers always run in their pod's user namespace.
 */
export function checkContainerUserns(cfg: ContainerConfig, sandbox: SandboxRecord): void {
  const u = cfg.linux?.securityContext?.namespaceOptions?.usernsOptions;
  if (!u) return;
  const field = "config.linux.security_context.namespace_options.userns_options";
  const same = (a: { containerId: number; hostId: number; length: number }[], b: { containerId: number; hostId: number; length: number } | undefined) =>
    a.length === 1 && !!b && a[0]!.containerId === b.containerId && a[0]!.hostId === b.hostId && a[0]!.length === b.length;
  if (u.mode === NamespaceMode.NODE && !sandbox.userns) return;
  if (u.mode === NamespaceMode.POD && sandbox.userns && same(u.uids, sandbox.userns.uids) && same(u.gids, sandbox.userns.gids)) return;
  const pod = sandbox.userns ? `its own user namespace (uids ${sandbox.userns.uids.containerId}:${sandbox.userns.uids.hostId}:${sandbox.userns.uids.length}, gids ${sandbox.userns.gids.containerId}:${sandbox.userns.gids.hostId}:${sandbox.userns.gids.length})` : "the host's user namespace";
  throw invalidArgument(`${field}: mode ${NamespaceMode[u.mode] ?? u.mode} with ${u.uids.length} uid and ${u.gids.length} gid mapping(s) does not match pod ${sandbox.id}, which runs in ${pod}`);
}

export async function buildContainerSpec(i: ContainerSpecInput): Promise<Spec> {
  const { cfg, pod, sandbox, image } = i;
  const sc = cfg.linux?.securityContext;
  const ns = sc?.namespaceOptions;
  const podNs = sandbox.namespaces;
  const spec = defaultSpec({ rootfs: i.rootfs, privileged: i.security.privileged, shmSizeBytes: i.shmSize });
  const resources = criResources(cfg.linux?.resources);
  await compose(spec, undefined, [
    withProcessArgs({
      command: cfg.command, args: cfg.args,
      imageEntrypoint: image.config.Entrypoint ?? [], imageCmd: image.config.Cmd ?? [],
      containerName: cfg.metadata?.name ?? i.id,
    }),
    withEnv({ imageEnv: image.config.Env ?? [], env: cfg.envs.map((e) => ({ key: e.key, value: Buffer.from(e.value).toString("utf8") })), hostname: pod.hostname }),
    withCwd({ workingDir: cfg.workingDir, imageWorkingDir: image.config.WorkingDir ?? "" }),
    withTerminal(cfg.tty),
    (s) => {
      s.process!.user = { uid: i.user.uid, gid: i.user.gid, additionalGids: i.user.additionalGids, ...(i.user.username ? { username: i.user.username } : {}) };
      if (!s.process!.env!.some((e) => e.startsWith("HOME="))) s.process!.env!.push(`HOME=${i.user.home}`);
    },
    withPodFiles({
      hostsPath: `${sandbox.podDir}/hosts`,
      resolvPath: `${sandbox.podDir}/resolv.conf`,
      hostnamePath: `${sandbox.podDir}/hostname`,
      ...(sandbox.shmPath ? { shmPath: sandbox.shmPath } : {}),
      readonly: sc?.readonlyRootfs ?? false,
    }),
    withCriMounts(cfg.mounts.map((m) => ({
      containerPath: m.containerPath, hostPath: m.hostPath, readonly: m.readonly,
      propagation: m.propagation as 0 | 1 | 2, recursiveReadOnly: m.recursiveReadOnly,
    })), { supportsRecursiveReadOnly: i.supportsRecursiveReadOnly }),
    withDevices(cfg.devices.map((d) => ({ containerPath: d.containerPath, hostPath: d.hostPath, permissions: d.permissions }))),
    withNamespaces({
      infraPid: sandbox.infra.pid,
      netnsPath: sandbox.netnsPath,
      network: podNs.network as 0 | 1 | 2 | 3,
      ipc: podNs.ipc as 0 | 1 | 2 | 3,
      uts: (podNs.network === NamespaceMode.NODE ? NamespaceMode.NODE : NamespaceMode.POD) as 0 | 2,
      pid: (ns?.pid ?? podNs.pid) as 0 | 1 | 2 | 3,
      ...(i.targetPid ? { targetPid: i.targetPid } : {}),
      cgroupNamespace: i.cgroupV2,
      // A pod with its own user namespace: every container joins it (its mounts are idmapped by berth).
      ...(sandbox.userns ? { usernsPath: sandbox.userns.path } : {}),
    }),
    withUserNamespaceMappings(sandbox.userns),
    withResources(resources, { cgroupV2: i.cgroupV2 }),
    withOomScoreAdj(Number(cfg.linux?.resources?.oomScoreAdj ?? 0n)),
    withCgroupsPath(i.cgroupsPath),
    withRlimits([]),
    withAnnotations({
      ...cfg.annotations,
      "io.kubernetes.cri.container-type": "container",
      "io.kubernetes.cri.container-name": cfg.metadata?.name ?? "",
      "io.kubernetes.cri.sandbox-id": sandbox.id,
      "io.kubernetes.cri.image-name": cfg.image?.image ?? "",
    }),
    applySecurityContext(i.security),
  ]);
  return spec;
}
