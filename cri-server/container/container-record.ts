// The persisted record of a container (one JSON file under <root>/containers).

/** Lifecycle: creating -> created -> running -> exited; "creating" left after a crash is cleaned at start. */
export type ContainerStateName = "creating" | "created" | "running" | "exited";

export interface ContainerRecord {
  id: string;
  /** Reserved name: <name>_<attempt>_<sandbox id>. */
  name: string;
  sandboxId: string;
  state: ContainerStateName;
  metadata: { name: string; attempt: number };
  /** ns since the epoch, decimal strings; "0" when not reached. */
  createdAt: string;
  startedAt: string;
  finishedAt: string;
  exitCode: number;
  reason: string;
  message: string;
  /** The image as the client named it, the resolved image id (config digest) and the repo digest (or id). */
  image: { image: string; annotations: Record<string, string>; userSpecifiedImage: string; runtimeHandler: string };
  imageId: string;
  imageRef: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** Host path of the CRI log ("" when the pod has no log directory). */
  logPath: string;
  /** ContainerConfig as stores/proto-record.ts keeps it ({ pb: base64 binary }; records from before: protobuf JSON). */
  config: unknown;
  runtimeHandler: string;
  bundle: string;
  rootfs: string;
  pid: number;
  conmonPid: number;
  cgroupsPath: string;
  /** LinuxContainerResources as stores/proto-record.ts keeps it (kept current by UpdateContainerResources). */
  resources: unknown;
  user: { uid: number; gid: number; additionalGids: number[]; username?: string };
  stopSignal: string;
}
