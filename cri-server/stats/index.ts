export {
  StatsCollector, aggregate,
  type ContainerSample, type ContainerStatsTarget, type PodSample, type PodStatsTarget, type StatsCollectorOptions,
} from "./stats-collector.ts";
export type {
  ContainerStats, CpuUsage, FilesystemUsage, MemoryUsage, NetworkInterfaceUsage, NetworkUsage, PodSandboxStats, ProcessUsage, U64,
} from "./cri-shapes.ts";
export {
  BASE_LABEL_KEYS, METRIC_GROUPS, MetricType, buildPodSandboxMetrics, metricDescriptors,
  type BuildMetricsOptions, type ContainerLabelInfo, type Metric, type MetricDescriptor, type MetricGroup, type PodSandboxMetrics,
} from "./metric-descriptors.ts";
export { directoryUsage, type DiskUsage } from "../../oci-runtime/foundation/disk-usage.ts";
export { parseNetDev, readNetDev, type InterfaceCounters } from "./net-dev.ts";
export { nanoCores } from "./cpu-rate.ts";
