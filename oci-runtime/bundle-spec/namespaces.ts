// Linux namespaces: a container joins its pod's: the pinned netns, and the IPC and UTS namespaces
// either pinned as files (a pod without an infra process) or held by the infra process.
import { failedPrecondition, internal, invalidArgument } from "../foundation/errdefs.ts";
import type { Namespace, NamespaceType, SpecOpt } from "./types.ts";

/** CRI NamespaceMode by name or proto number (POD=0, CONTAINER=1, NODE=2, TARGET=3). */
export type NamespaceMode = "POD" | "CONTAINER" | "NODE" | "TARGET" | 0 | 1 | 2 | 3;
const MODES = ["POD", "CONTAINER", "NODE", "TARGET"] as const;
export type ModeName = (typeof MODES)[number];
export const modeName = (m: NamespaceMode | undefined): ModeName =>
  m === undefined ? "POD" : typeof m === "number" ? (MODES[m] ?? "POD") : m;

/** One id range of a user namespace. */
export interface IdRange { containerId: number; hostId: number; length: number }
/** A pod's own user namespace: its pin and its one uid and one gid range. */
export interface PodUserns { path: string; uids: IdRange; gids: IdRange }

export interface ContainerNamespaces {
  /** The pod's infra (catatonit) pid, whose /proc/<pid>/ns/* the container joins; 0 when the pod has none. */
  infraPid: number;
  /** The pod's pinned IPC namespace (a pod without an infra process); joined instead of the infra's. */
  ipcPath?: string;
  /** The pod's pinned UTS namespace (a pod without an infra process); joined instead of the infra's. */
  utsPath?: string;
  /** The pod's pinned network namespace; unused with network NODE. */
  netnsPath?: string;
  network?: NamespaceMode;
  ipc?: NamespaceMode;
  uts?: NamespaceMode;
  pid?: NamespaceMode;
  /** For pid TARGET: the target container's pid. */
  targetPid?: number;
  /** A private cgroup namespace (default on cgroup v2 hosts). */
  cgroupNamespace?: boolean;
  /** Root of /proc, for tests. */
  procRoot?: string;
  /** The pod's pinned user namespace (user namespace mode POD); absent: the host's. Joined first. */
  usernsPath?: string;
}

/** The namespaces list of a pod container (pure). */
export function containerNamespaces(n: ContainerNamespaces): Namespace[] {
  const proc = n.procRoot ?? "/proc";
  const ns = (type: NamespaceType, pid: number, file: string): Namespace => ({ type, path: `${proc}/${pid}/ns/${file}` });
  // The pod's namespace: its pin when there is one, else the infra process's.
  const podNs = (type: NamespaceType, file: string, pin: string | undefined): Namespace => {
    if (pin) return { type, path: pin };
    if (!(n.infraPid > 0)) throw failedPrecondition(`the pod has neither an infra process nor a pinned ${type} namespace to join`);
    return ns(type, n.infraPid, file);
  };
  const out: Namespace[] = [];
  if (n.usernsPath) out.push({ type: "user", path: n.usernsPath });
  out.push({ type: "mount" });
  const net = modeName(n.network);
  if (net !== "NODE") {
    if (n.netnsPath) out.push({ type: "network", path: n.netnsPath });
    else out.push(podNs("network", "net", undefined));
  }
  if (modeName(n.ipc) !== "NODE") out.push(podNs("ipc", "ipc", n.ipcPath));
  if (modeName(n.uts) !== "NODE") out.push(podNs("uts", "uts", n.utsPath));
  switch (modeName(n.pid)) {
    case "POD":
      // Only a pod that shares a PID namespace (pid mode POD) has an infra process holding one.
      if (!(n.infraPid > 0)) throw invalidArgument("pid namespace mode POD: the pod shares no PID namespace (it was created with pid mode CONTAINER or NODE and runs no infra process)");
      out.push(ns("pid", n.infraPid, "pid"));
      break;
    case "CONTAINER": out.push({ type: "pid" }); break;
    case "TARGET":
      if (!n.targetPid) throw invalidArgument("pid namespace mode TARGET requires a running target container");
      out.push(ns("pid", n.targetPid, "pid"));
      break;
    case "NODE": break;
  }
  if (n.cgroupNamespace) out.push({ type: "cgroup" });
  return out;
}

/**
 * The namespaces list of a pod's infra process (pure): it makes the pod's pid, ipc and uts
 * namespaces (each unless the pod uses the host's) and joins the pinned network namespace and,
 * first of all, the pod's own user namespace, which then owns the namespaces it creates.
 */
export function infraNamespaces(n: { network: NamespaceMode; ipc: NamespaceMode; pid: NamespaceMode; netnsPath: string; usernsPath?: string }): Namespace[] {
  const out: Namespace[] = [];
  if (n.usernsPath) out.push({ type: "user", path: n.usernsPath });
  out.push({ type: "mount" });
  if (modeName(n.pid) !== "NODE") out.push({ type: "pid" });
  if (modeName(n.ipc) !== "NODE") out.push({ type: "ipc" });
  if (modeName(n.network) !== "NODE") {
    if (!n.netnsPath) throw internal("the infra of a pod without host network needs its pinned network namespace");
    out.push({ type: "uts" });
    out.push({ type: "network", path: n.netnsPath });
  }
  return out;
}

export const withNamespaces = (n: ContainerNamespaces): SpecOpt<unknown> => (spec) => {
  (spec.linux ??= {}).namespaces = containerNamespaces(n);
};

/** Sets the user namespace mappings of a spec (one uid and one gid range). */
export const withUserNamespaceMappings = (m: { uids: IdRange; gids: IdRange } | undefined): SpecOpt<unknown> => (spec) => {
  if (!m) return;
  const linux = (spec.linux ??= {});
  linux.uidMappings = [{ containerID: m.uids.containerId, hostID: m.uids.hostId, size: m.uids.length }];
  linux.gidMappings = [{ containerID: m.gids.containerId, hostID: m.gids.hostId, size: m.gids.length }];
};
