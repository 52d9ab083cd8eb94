// CRI messages -> the plain inputs of oci-runtime's one spec builder
// (oci-runtime/bundle-spec/container-spec.ts). This module only maps and validates CRI fields;
// every spec option, namespace list and cgroup path is decided in oci-runtime.
import {
  NamespaceMode, type ContainerConfig, type LinuxContainerResources, type PodSandboxConfig,
} from "../../proto/gen/runtime/v1/api_pb.js";
import { resolveUserInRootfs, type CriResources, type ResolvedUser, type UserFiles } from "../../oci-runtime/index.ts";
import { modeName, type ModeName } from "../../oci-runtime/bundle-spec/namespaces.ts";
import type { ContainerSpecInput, InfraSpecInput, PodSpecInput } from "../../oci-runtime/bundle-spec/container-spec.ts";
import { resolveSandboxSecurityContext, resolveSecurityContext, type ResolvedSecurity } from "../../oci-runtime/security/index.ts";
import { invalidArgument } from "../../oci-runtime/foundation/errdefs.ts";
import type { Image } from "../../image-service/image-service.ts";
import type { SandboxRecord } from "../sandbox/sandbox-record.ts";

/** A CRI NamespaceMode number (POD=0, CONTAINER=1, NODE=2, TARGET=3) by name; unknown numbers are refused. */
export function namespaceMode(v: number, field: string): ModeName {
  if (!(v in NamespaceMode) || !Number.isInteger(v) || v < 0 || v > 3) throw invalidArgument(`${field}: unknown namespace mode ${v}`);
  return modeName(v as 0 | 1 | 2 | 3);
}

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
export function resolveContainerUser(cfg: ContainerConfig, image: Image, rootfs: string | (() => Promise<UserFiles>)): Promise<ResolvedUser> {
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

/** What CreateContainer knows when it builds the spec: CRI messages, berth's records and resolved facts. */
export interface CriContainerSpecSource {
  id: string;
  cfg: ContainerConfig;
  pod: PodSandboxConfig;
  sandbox: SandboxRecord;
  image: Image;
  /** Absolute path of the mounted rootfs. */
  rootfs: string;
  security: ResolvedSecurity;
  user: ResolvedUser;
  cgroupV2: boolean;
  shmSize: number;
  /** pid of the target container for pid namespace TARGET. */
  targetPid?: number;
  supportsRecursiveReadOnly: boolean;
}

/** The pod part of a container's spec input, from its sandbox record. */
export function podSpecInput(sandbox: SandboxRecord, hostname: string): PodSpecInput {
  return {
    id: sandbox.id,
    infraPid: sandbox.infra.pid,
    // A pod without an infra process: its pinned ipc and uts namespaces ("" where it uses the host's).
    ...(sandbox.pins?.ipc ? { ipcPath: sandbox.pins.ipc } : {}),
    ...(sandbox.pins?.uts ? { utsPath: sandbox.pins.uts } : {}),
    netnsPath: sandbox.netnsPath,
    network: namespaceMode(sandbox.namespaces.network, `pod ${sandbox.id} network namespace`),
    ipc: namespaceMode(sandbox.namespaces.ipc, `pod ${sandbox.id} ipc namespace`),
    pid: namespaceMode(sandbox.namespaces.pid, `pod ${sandbox.id} pid namespace`),
    podDir: sandbox.podDir,
    shmPath: sandbox.shmPath,
    hostname,
    cgroupParent: sandbox.cgroupParent,
    ...(sandbox.userns ? { userns: sandbox.userns } : {}),
  };
}

/** CRI ContainerConfig (and its pod) -> oci-runtime's ContainerSpecInput. */
export function containerSpecInput(c: CriContainerSpecSource): ContainerSpecInput {
  const { cfg, image } = c;
  const sc = cfg.linux?.securityContext;
  const pidOpt = sc?.namespaceOptions?.pid;
  let pidMode = pidOpt !== undefined && sc?.namespaceOptions ? namespaceMode(pidOpt, "config.linux.security_context.namespace_options.pid") : undefined;
  // A pod without an infra process shares no PID namespace: "the pod's" (POD, also the protobuf
  // default of a container that sets other namespace options) is what the pod's mode gives each
  // container: its own (CONTAINER) or the host's (NODE).
  if (pidMode === "POD" && c.sandbox.pins) pidMode = namespaceMode(c.sandbox.namespaces.pid, `pod ${c.sandbox.id} pid namespace`);
  return {
    id: c.id,
    name: cfg.metadata?.name ?? "",
    imageName: cfg.image?.image ?? "",
    rootfs: c.rootfs,
    image: { entrypoint: image.config.Entrypoint ?? [], cmd: image.config.Cmd ?? [], env: image.config.Env ?? [], workingDir: image.config.WorkingDir ?? "" },
    command: [...cfg.command],
    args: [...cfg.args],
    workingDir: cfg.workingDir,
    env: cfg.envs.map((e) => ({ key: e.key, value: Buffer.from(e.value).toString("utf8") })),
    tty: cfg.tty,
    user: c.user,
    mounts: cfg.mounts.map((m) => ({
      containerPath: m.containerPath, hostPath: m.hostPath, readonly: m.readonly,
      propagation: m.propagation as 0 | 1 | 2, recursiveReadOnly: m.recursiveReadOnly,
    })),
    devices: cfg.devices.map((d) => ({ containerPath: d.containerPath, hostPath: d.hostPath, permissions: d.permissions })),
    resources: criResources(cfg.linux?.resources),
    oomScoreAdj: Number(cfg.linux?.resources?.oomScoreAdj ?? 0n),
    ...(pidMode ? { pidMode } : {}),
    ...(c.targetPid ? { targetPid: c.targetPid } : {}),
    annotations: { ...cfg.annotations },
    security: c.security,
    pod: podSpecInput(c.sandbox, c.pod.hostname),
    host: { cgroupV2: c.cgroupV2, shmSize: c.shmSize, supportsRecursiveReadOnly: c.supportsRecursiveReadOnly },
  };
}

/** What RunPodSandbox knows when it builds the infra spec. */
export interface CriInfraSpecSource {
  id: string;
  hostname: string;
  netnsPath: string;
  namespaces: SandboxRecord["namespaces"];
  sysctls: Record<string, string>;
  cgroupParent: string;
  config: PodSandboxConfig;
  userns?: SandboxRecord["userns"];
  /** Host path of the infra rootfs. */
  rootfs: string;
}

/** The infra process's security: the pod's seccomp, AppArmor and privileged fields (INVALID_ARGUMENT naming the field). */
export function resolveInfraSecurity(config: PodSandboxConfig, seccompDefault: string): Promise<ResolvedSecurity> {
  const sc = config.linux?.securityContext;
  return resolveSandboxSecurityContext({
    privileged: sc?.privileged ?? false,
    readonlyRootfs: true,
    seccomp: sc?.seccomp,
    seccompProfilePath: sc?.seccompProfilePath ?? "",
    apparmor: sc?.apparmor,
    selinuxOptions: sc?.selinuxOptions,
    seccompDefault,
  });
}

/** PodSandboxConfig and the sandbox's resolved parts -> oci-runtime's InfraSpecInput. */
export function infraSpecInput(i: CriInfraSpecSource, security: ResolvedSecurity): InfraSpecInput {
  const sc = i.config.linux?.securityContext;
  const uid = Number(sc?.runAsUser?.value ?? 0n);
  const gid = Number(sc?.runAsGroup?.value ?? 0n);
  return {
    id: i.id,
    rootfs: i.rootfs,
    hostname: i.hostname,
    netnsPath: i.netnsPath,
    network: namespaceMode(i.namespaces.network, "config.linux.security_context.namespace_options.network"),
    ipc: namespaceMode(i.namespaces.ipc, "config.linux.security_context.namespace_options.ipc"),
    pid: namespaceMode(i.namespaces.pid, "config.linux.security_context.namespace_options.pid"),
    sysctls: { ...i.sysctls },
    cgroupParent: i.cgroupParent,
    ...(i.userns ? { userns: i.userns } : {}),
    // The pod's supplemental groups, as containerd gives its sandbox process.
    user: { uid, gid, additionalGids: [...new Set([gid, ...(sc?.supplementalGroups ?? []).map(Number)])] },
    security,
  };
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
