// ContainerRecord -> CRI Container / ContainerStatus messages.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { ContainerState, type ContainerSchema, type ContainerStatusSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import type { ContainerRecord } from "../container/container-record.ts";
import { criSignalValue } from "../container/signals.ts";
import { containerConfigOf, containerResourcesOf } from "../container/deps.ts";

export function criContainerState(rec: ContainerRecord): ContainerState {
  switch (rec.state) {
    case "created": return ContainerState.CONTAINER_CREATED;
    case "running": return ContainerState.CONTAINER_RUNNING;
    case "exited": return ContainerState.CONTAINER_EXITED;
    default: return ContainerState.CONTAINER_UNKNOWN;
  }
}

/** The image as kubelet shows it: the name the pod asked for (containerd reports a repo tag here). */
const imageSpec = (rec: ContainerRecord) => ({
  image: rec.image.userSpecifiedImage || rec.image.image,
  annotations: rec.image.annotations,
  userSpecifiedImage: rec.image.userSpecifiedImage,
  runtimeHandler: rec.image.runtimeHandler,
});

export function toContainer(rec: ContainerRecord): MessageInitShape<typeof ContainerSchema> {
  return {
    id: rec.id,
    podSandboxId: rec.sandboxId,
    metadata: rec.metadata,
    image: imageSpec(rec),
    // As containerd: ListContainers' image_ref is the image id (older kubelets use it for image GC);
    // ContainerStatus carries the repo digest.
    imageRef: rec.imageId,
    imageId: rec.imageId,
    state: criContainerState(rec),
    createdAt: BigInt(rec.createdAt),
    labels: rec.labels,
    annotations: rec.annotations,
  };
}

export function toContainerStatus(rec: ContainerRecord): MessageInitShape<typeof ContainerStatusSchema> {
  const cfg = containerConfigOf(rec);
  const resources = containerResourcesOf(rec);
  return {
    id: rec.id,
    metadata: rec.metadata,
    state: criContainerState(rec),
    createdAt: BigInt(rec.createdAt),
    startedAt: BigInt(rec.startedAt),
    finishedAt: BigInt(rec.finishedAt),
    exitCode: rec.exitCode,
    image: imageSpec(rec),
    imageRef: rec.imageRef,
    imageId: rec.imageId,
    reason: rec.reason,
    message: rec.message,
    labels: rec.labels,
    annotations: rec.annotations,
    mounts: cfg.mounts,
    logPath: rec.logPath,
    ...(resources ? { resources: { linux: resources } } : {}),
    user: { linux: { uid: BigInt(rec.user.uid), gid: BigInt(rec.user.gid), supplementalGroups: rec.user.additionalGids.map(BigInt) } },
    stopSignal: criSignalValue(rec.stopSignal),
  };
}
