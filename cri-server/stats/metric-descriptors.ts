// cAdvisor-compatible metrics for kubelet's ListMetricDescriptors and
// ListPodSandboxMetrics. Label keys start with ["id", "name", "image"];
// some metrics add one or more (cpu, interface, pagesize, failure_type/scope).
// Values are integers (CRI's UInt64Value): seconds are whole seconds.

import type { CgroupStats } from "../../oci-runtime/cgroups/stats/types.ts";
import { epochNanos } from "../../oci-runtime/cgroups/stats/clock.ts";
import type { InterfaceCounters } from "./net-dev.ts";
import type { ContainerSample, PodSample } from "./stats-collector.ts";

/** Numeric values of runtime.v1.MetricType. */
export const MetricType = { COUNTER: 0, GAUGE: 1 } as const;
export type MetricType = (typeof MetricType)[keyof typeof MetricType];

export const METRIC_GROUPS = ["cpu", "memory", "network", "process", "disk", "hugetlb", "oom", "spec", "misc"] as const;
export type MetricGroup = (typeof METRIC_GROUPS)[number];

export const BASE_LABEL_KEYS = ["id", "name", "image"] as const;

/** Shaped like runtime.v1.MetricDescriptor. */
export interface MetricDescriptor { name: string; help: string; labelKeys: string[] }

/** Shaped like runtime.v1.Metric. */
export interface Metric { name: string; timestamp: bigint; metricType: MetricType; labelValues: string[]; value: { value: bigint } }

/** Shaped like runtime.v1.PodSandboxMetrics. */
export interface PodSandboxMetrics {
  podSandboxId: string;
  metrics: Metric[];
  containerMetrics: { containerId: string; metrics: Metric[] }[];
}

/** What a metric reads: the cgroup/disk sample of one cgroup, and the pod's network counters. */
interface Source { cgroup?: CgroupStats; disk?: { bytes: bigint; inodes: bigint }; interfaces?: InterfaceCounters[] }
type Value = { labels?: string[]; value: bigint };

interface Def {
  group: MetricGroup;
  name: string;
  help: string;
  type: MetricType;
  extraLabels?: string[];
  values: (s: Source) => Value[];
}

const SEC = 1_000_000_000n;
const one = (v: bigint | undefined): Value[] => (v === undefined ? [] : [{ value: v }]);
const perIface = (pick: (i: InterfaceCounters) => bigint) => (s: Source): Value[] =>
  (s.interfaces ?? []).filter((i) => i.name !== "lo").map((i) => ({ labels: [i.name], value: pick(i) }));
const { COUNTER, GAUGE } = MetricType;

const DEFS: Def[] = [
  // cpu
  { group: "cpu", name: "container_cpu_usage_seconds_total", help: "Cumulative cpu time consumed in seconds.", type: COUNTER, extraLabels: ["cpu"],
    values: (s) => (s.cgroup?.cpu ? [{ labels: ["total"], value: s.cgroup.cpu.usageCoreNanoSeconds / SEC }] : []) },
  { group: "cpu", name: "container_cpu_user_seconds_total", help: "Cumulative user cpu time consumed in seconds.", type: COUNTER,
    values: (s) => one(div(s.cgroup?.cpu?.userNanoSeconds, SEC)) },
  { group: "cpu", name: "container_cpu_system_seconds_total", help: "Cumulative system cpu time consumed in seconds.", type: COUNTER,
    values: (s) => one(div(s.cgroup?.cpu?.systemNanoSeconds, SEC)) },
  { group: "cpu", name: "container_cpu_cfs_periods_total", help: "Number of elapsed enforcement period intervals.", type: COUNTER,
    values: (s) => one(s.cgroup?.cpu?.periods) },
  { group: "cpu", name: "container_cpu_cfs_throttled_periods_total", help: "Number of throttled period intervals.", type: COUNTER,
    values: (s) => one(s.cgroup?.cpu?.throttledPeriods) },
  { group: "cpu", name: "container_cpu_cfs_throttled_seconds_total", help: "Total time duration the container has been throttled.", type: COUNTER,
    values: (s) => one(div(s.cgroup?.cpu?.throttledNanoSeconds, SEC)) },
  // memory
  { group: "memory", name: "container_memory_usage_bytes", help: "Current memory usage in bytes, including all memory regardless of when it was accessed.", type: GAUGE,
    values: (s) => one(s.cgroup?.memory?.usageBytes) },
  { group: "memory", name: "container_memory_working_set_bytes", help: "Current working set in bytes.", type: GAUGE,
    values: (s) => one(s.cgroup?.memory?.workingSetBytes) },
  { group: "memory", name: "container_memory_rss", help: "Size of RSS in bytes.", type: GAUGE,
    values: (s) => one(s.cgroup?.memory?.rssBytes) },
  { group: "memory", name: "container_memory_cache", help: "Number of bytes of page cache memory.", type: GAUGE,
    values: (s) => one(s.cgroup?.memory?.cacheBytes) },
  { group: "memory", name: "container_memory_mapped_file", help: "Size of memory mapped files in bytes.", type: GAUGE,
    values: (s) => one(s.cgroup?.memory?.mappedFileBytes) },
  { group: "memory", name: "container_memory_kernel_usage", help: "Size of kernel memory allocated in bytes.", type: GAUGE,
    values: (s) => one(s.cgroup?.memory?.kernelBytes) },
  { group: "memory", name: "container_memory_swap", help: "Container swap usage in bytes.", type: GAUGE,
    values: (s) => one(s.cgroup?.memory?.swapBytes) },
  { group: "memory", name: "container_memory_max_usage_bytes", help: "Maximum memory usage recorded in bytes.", type: GAUGE,
    values: (s) => one(s.cgroup?.memory?.maxUsageBytes) },
  { group: "memory", name: "container_memory_failcnt", help: "Number of memory usage hits limits.", type: COUNTER,
    values: (s) => one(s.cgroup?.memory?.failcnt) },
  { group: "memory", name: "container_memory_failures_total", help: "Cumulative count of memory allocation failures.", type: COUNTER, extraLabels: ["failure_type", "scope"],
    values: (s) => {
      const m = s.cgroup?.memory;
      return m ? [{ labels: ["pgfault", "container"], value: m.pageFaults }, { labels: ["pgmajfault", "container"], value: m.majorPageFaults }] : [];
    } },
  // network (pod level)
  { group: "network", name: "container_network_receive_bytes_total", help: "Cumulative count of bytes received.", type: COUNTER, extraLabels: ["interface"], values: perIface((i) => i.rxBytes) },
  { group: "network", name: "container_network_receive_packets_total", help: "Cumulative count of packets received.", type: COUNTER, extraLabels: ["interface"], values: perIface((i) => i.rxPackets) },
  { group: "network", name: "container_network_receive_packets_dropped_total", help: "Cumulative count of packets dropped while receiving.", type: COUNTER, extraLabels: ["interface"], values: perIface((i) => i.rxDropped) },
  { group: "network", name: "container_network_receive_errors_total", help: "Cumulative count of errors encountered while receiving.", type: COUNTER, extraLabels: ["interface"], values: perIface((i) => i.rxErrors) },
  { group: "network", name: "container_network_transmit_bytes_total", help: "Cumulative count of bytes transmitted.", type: COUNTER, extraLabels: ["interface"], values: perIface((i) => i.txBytes) },
  { group: "network", name: "container_network_transmit_packets_total", help: "Cumulative count of packets transmitted.", type: COUNTER, extraLabels: ["interface"], values: perIface((i) => i.txPackets) },
  { group: "network", name: "container_network_transmit_packets_dropped_total", help: "Cumulative count of packets dropped while transmitting.", type: COUNTER, extraLabels: ["interface"], values: perIface((i) => i.txDropped) },
  { group: "network", name: "container_network_transmit_errors_total", help: "Cumulative count of errors encountered while transmitting.", type: COUNTER, extraLabels: ["interface"], values: perIface((i) => i.txErrors) },
  // process
  { group: "process", name: "container_processes", help: "Number of processes running inside the container.", type: GAUGE,
    values: (s) => one(s.cgroup?.pids?.count) },
  { group: "process", name: "container_threads_max", help: "Maximum number of threads allowed inside the container, infinity if value is zero.", type: GAUGE,
    values: (s) => (s.cgroup?.pids ? [{ value: s.cgroup.pids.limit ?? 0n }] : []) },
  // disk
  { group: "disk", name: "container_fs_usage_bytes", help: "Number of bytes that are consumed by the container on this filesystem.", type: GAUGE,
    values: (s) => one(s.disk?.bytes) },
  { group: "disk", name: "container_fs_inodes_used", help: "Number of inodes used by the container on this filesystem.", type: GAUGE,
    values: (s) => one(s.disk?.inodes) },
  // hugetlb
  { group: "hugetlb", name: "container_hugetlb_usage_bytes", help: "Current hugepage usage.", type: GAUGE, extraLabels: ["pagesize"],
    values: (s) => (s.cgroup?.hugetlb ?? []).map((h) => ({ labels: [h.pageSize], value: h.usageBytes })) },
  { group: "hugetlb", name: "container_hugetlb_max_usage_bytes", help: "Maximum hugepage usages recorded.", type: GAUGE, extraLabels: ["pagesize"],
    values: (s) => (s.cgroup?.hugetlb ?? []).flatMap((h) => (h.maxUsageBytes === undefined ? [] : [{ labels: [h.pageSize], value: h.maxUsageBytes }])) },
  // oom
  { group: "oom", name: "container_oom_events_total", help: "Count of out of memory events observed for the container.", type: COUNTER,
    values: (s) => one(s.cgroup?.memory?.oomKills) },
  // spec
  { group: "spec", name: "container_spec_memory_limit_bytes", help: "Memory limit for the container.", type: GAUGE,
    values: (s) => (s.cgroup?.memory ? [{ value: s.cgroup.memory.limitBytes ?? 0n }] : []) },
  // misc
  { group: "misc", name: "container_last_seen", help: "Last time a container was seen by the exporter.", type: GAUGE,
    values: (s) => (s.cgroup ? [{ value: epochNanos() / SEC }] : []) },
];

function div(v: bigint | undefined, by: bigint): bigint | undefined {
  return v === undefined ? undefined : v / by;
}

const selected = (groups?: Iterable<MetricGroup>) => {
  const g = new Set(groups ?? METRIC_GROUPS);
  return DEFS.filter((d) => g.has(d.group));
};

/** Descriptors for ListMetricDescriptors (optionally only some groups). */
export function metricDescriptors(groups?: Iterable<MetricGroup>): MetricDescriptor[] {
  return selected(groups).map((d) => ({ name: d.name, help: d.help, labelKeys: [...BASE_LABEL_KEYS, ...(d.extraLabels ?? [])] }));
}

/** Name and image of each container, for the "name" and "image" labels. */
export interface ContainerLabelInfo { name: string; image: string }

export interface BuildMetricsOptions {
  groups?: Iterable<MetricGroup>;
  /** Epoch nanoseconds stamped on every metric; default now. */
  timestamp?: bigint;
}

/**
 * A pod's metrics from its collector sample: pod-level series (labels
 * [podId, "POD", ""], including network per interface) and per-container
 * series (labels [containerId, name, image]).
 */
export function buildPodSandboxMetrics(
  sample: PodSample,
  containers: Record<string, ContainerLabelInfo>,
  opts: BuildMetricsOptions = {},
): PodSandboxMetrics {
  const defs = selected(opts.groups);
  const ts = opts.timestamp ?? epochNanos();
  const podSource: Source = {};
  if (sample.cgroup) podSource.cgroup = sample.cgroup;
  if (sample.network) podSource.interfaces = sample.network.interfaces;
  return {
    podSandboxId: sample.id,
    metrics: compute(defs, podSource, [sample.id, "POD", ""], ts),
    containerMetrics: sample.containers.map((c) => ({
      containerId: c.id,
      metrics: compute(defs.filter((d) => d.group !== "network"), containerSource(c), [c.id, containers[c.id]?.name ?? "", containers[c.id]?.image ?? ""], ts),
    })),
  };
}

function containerSource(c: ContainerSample): Source {
  const s: Source = {};
  if (c.cgroup) s.cgroup = c.cgroup;
  if (c.disk) s.disk = c.disk;
  return s;
}

function compute(defs: Def[], src: Source, base: string[], timestamp: bigint): Metric[] {
  const out: Metric[] = [];
  for (const d of defs) {
    for (const v of d.values(src)) {
      out.push({ name: d.name, timestamp, metricType: d.type, labelValues: [...base, ...(v.labels ?? [])], value: { value: v.value } });
    }
  }
  return out;
}
