// The persisted record of a pod sandbox (one JSON file under <root>/sandboxes).

/** Lifecycle: creating -> ready -> notready; a record left in "creating" after a crash is cleaned up at start. */
export type SandboxState = "creating" | "ready" | "notready";

export interface SandboxRecord {
  id: string;
  /** CRI reserved name: name_namespace_uid_attempt. */
  name: string;
  state: SandboxState;
  metadata: { name: string; uid: string; namespace: string; attempt: number };
  /** ns since the epoch, as a decimal string. */
  createdAt: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  runtimeHandler: string;
  /** The PodSandboxConfig as stores/proto-record.ts keeps it ({ pb: base64 binary }; records from before: protobuf JSON). */
  config: unknown;
  /** NamespaceMode values: 0 POD, 1 CONTAINER, 2 NODE, 3 TARGET. */
  namespaces: { network: number; pid: number; ipc: number; targetId: string };
  /** Pinned network namespace ("" for host network). */
  netnsPath: string;
  /** Pod IPs, primary first. */
  ips: string[];
  /** Directory with hosts, resolv.conf, hostname and the shm mount. */
  podDir: string;
  /** The pod's /dev/shm on the host ("" when the pod uses the host's IPC namespace). */
  shmPath: string;
  /** cgroup parent given by kubelet ("" for none). */
  cgroupParent: string;
  /** The infra process (pid 0, bundle "" for a pod without one: see `pins`). */
  infra: { pid: number; bundle: string; cgroupsPath: string; startTime?: string; bootId?: string };
  /**
   * A pod without an infra process (runtime.drop_infra and pid mode CONTAINER or NODE): where its
   * IPC and UTS namespaces are pinned ("" where it uses the host's). Absent: the pod has an infra
   * process (and every record from before drop_infra).
   */
  pins?: { ipc: string; uts: string };
  /**
   * The pod's own user namespace (user namespace mode POD): the mappings kubelet sent and the
   * pin under <state>/userns/pods/<id>, which also holds the network namespace it owns.
   * Absent: the host's user namespace.
   */
  userns?: {
    path: string;
    uids: { containerId: number; hostId: number; length: number };
    gids: { containerId: number; hostId: number; length: number };
  };
  /** Why the sandbox is not ready, when berth knows. */
  reason?: string;
}
