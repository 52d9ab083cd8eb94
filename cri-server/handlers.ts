// The RPC tables: one module per RPC, registered here by its lowerCamel name.
// A method missing from a table answers UNIMPLEMENTED naming the RPC.
import type { ImageImplementations, RuntimeImplementations } from "./rpc.ts";
import { runtimeConfig } from "./runtime/runtime-config.ts";
import { status } from "./runtime/status.ts";
import { updateRuntimeConfig } from "./runtime/update-runtime-config.ts";
import { version } from "./runtime/version.ts";
import { runPodSandbox } from "./runtime/sandbox-run.ts";
import { stopPodSandbox } from "./runtime/sandbox-stop.ts";
import { removePodSandbox } from "./runtime/sandbox-remove.ts";
import { podSandboxStatus } from "./runtime/sandbox-status.ts";
import { listPodSandbox } from "./runtime/sandbox-list.ts";
import { createContainer } from "./runtime/container-create.ts";
import { startContainer } from "./runtime/container-start.ts";
import { stopContainer } from "./runtime/container-stop.ts";
import { removeContainer } from "./runtime/container-remove.ts";
import { containerStatus } from "./runtime/container-status.ts";
import { listContainers } from "./runtime/container-list.ts";
import { execSync } from "./runtime/exec-sync.ts";
import { reopenContainerLog } from "./runtime/reopen-container-log.ts";
import { updateContainerResources } from "./runtime/update-container-resources.ts";
import { getContainerEvents } from "./runtime/container-events.ts";
import { exec } from "./runtime/exec.ts";
import { attach } from "./runtime/attach.ts";
import { portForward } from "./runtime/port-forward.ts";
import { containerStats } from "./runtime/container-stats.ts";
import { listContainerStats } from "./runtime/container-stats-list.ts";
import { podSandboxStats } from "./runtime/sandbox-stats.ts";
import { listPodSandboxStats } from "./runtime/sandbox-stats-list.ts";
import { listMetricDescriptors } from "./runtime/metric-descriptors-list.ts";
import { listPodSandboxMetrics } from "./runtime/sandbox-metrics-list.ts";
import { checkpointContainer } from "./runtime/checkpoint-container.ts";
import { updatePodSandboxResources } from "./runtime/update-pod-sandbox-resources.ts";
import { imagePull } from "./images/image-pull.ts";
import { streamImages } from "./images/image-stream.ts";
import { streamPodSandboxes } from "./runtime/sandbox-stream.ts";
import { streamContainers } from "./runtime/container-stream.ts";
import { streamContainerStats } from "./runtime/container-stats-stream.ts";
import { streamPodSandboxStats } from "./runtime/sandbox-stats-stream.ts";
import { streamPodSandboxMetrics } from "./runtime/sandbox-metrics-stream.ts";
import { imageStatus } from "./images/image-status.ts";
import { imageList } from "./images/image-list.ts";
import { imageRemove } from "./images/image-remove.ts";
import { imageFsInfo } from "./images/image-fs-info.ts";

export const runtimeImplementations: RuntimeImplementations = {
  version,
  status,
  runtimeConfig,
  updateRuntimeConfig,
  runPodSandbox,
  stopPodSandbox,
  removePodSandbox,
  podSandboxStatus,
  listPodSandbox,
  createContainer,
  startContainer,
  stopContainer,
  removeContainer,
  containerStatus,
  listContainers,
  execSync,
  reopenContainerLog,
  updateContainerResources,
  getContainerEvents,
  exec,
  attach,
  portForward,
  containerStats,
  listContainerStats,
  podSandboxStats,
  listPodSandboxStats,
  listMetricDescriptors,
  listPodSandboxMetrics,
  checkpointContainer,
  updatePodSandboxResources,
  streamPodSandboxes,
  streamContainers,
  streamContainerStats,
  streamPodSandboxStats,
  streamPodSandboxMetrics,
};

export const imageImplementations: ImageImplementations = {
  pullImage: imagePull,
  imageStatus,
  listImages: imageList,
  streamImages,
  removeImage: imageRemove,
  imageFsInfo,
};
