import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { MetricDescriptorSchema, PodSandboxMetricsSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import { buildPodSandboxMetrics, metricDescriptors, MetricType } from "./metric-descriptors.ts";
import type { PodSample } from "./stats-collector.ts";

const TS = 5n;
const SEC = 1_000_000_000n;
const sample: PodSample = {
  id: "pod1",
  cgroup: {
    version: 1, hugetlb: [],
    cpu: { timestamp: TS, usageCoreNanoSeconds: 12n * SEC + 5n },
    memory: { timestamp: TS, usageBytes: 10n, workingSetBytes: 9n, rssBytes: 8n, pageFaults: 7n, majorPageFaults: 6n },
  },
  network: { timestamp: TS, interfaces: [
    { name: "lo", rxBytes: 1n, rxPackets: 1n, rxErrors: 0n, rxDropped: 0n, txBytes: 1n, txPackets: 1n, txErrors: 0n, txDropped: 0n },
    { name: "eth0", rxBytes: 100n, rxPackets: 2n, rxErrors: 3n, rxDropped: 0n, txBytes: 50n, txPackets: 1n, txErrors: 4n, txDropped: 0n },
  ] },
  containers: [{
    id: "c1",
    cgroup: {
      version: 1, hugetlb: [{ pageSize: "2MB", usageBytes: 0n }],
      cpu: { timestamp: TS, usageCoreNanoSeconds: 3n * SEC, userNanoSeconds: 2n * SEC, systemNanoSeconds: SEC },
      memory: { timestamp: TS, usageBytes: 4n, workingSetBytes: 3n, rssBytes: 2n, cacheBytes: 1n, pageFaults: 1n, majorPageFaults: 0n, limitBytes: 1024n, oomKills: 1n },
      pids: { timestamp: TS, count: 3n },
    },
    disk: { timestamp: TS, bytes: 8192n, inodes: 4n },
  }],
};

describe("metric descriptors", () => {
  const ds = metricDescriptors();
  const byName = new Map(ds.map((d) => [d.name, d]));
  it("use cAdvisor names and label keys", () => {
    for (const n of ["container_cpu_usage_seconds_total", "container_cpu_user_seconds_total", "container_cpu_system_seconds_total",
      "container_memory_usage_bytes", "container_memory_working_set_bytes", "container_memory_rss", "container_memory_cache",
      "container_memory_swap", "container_spec_memory_limit_bytes", "container_network_receive_bytes_total",
      "container_network_transmit_bytes_total", "container_network_receive_errors_total", "container_processes", "container_fs_usage_bytes"]) {
      assert.ok(byName.has(n), n);
    }
    assert.deepEqual(byName.get("container_memory_rss")?.labelKeys, ["id", "name", "image"]);
    assert.deepEqual(byName.get("container_cpu_usage_seconds_total")?.labelKeys, ["id", "name", "image", "cpu"]);
    assert.deepEqual(byName.get("container_network_receive_bytes_total")?.labelKeys, ["id", "name", "image", "interface"]);
    assert.equal(new Set(ds.map((d) => d.name)).size, ds.length, "names are unique");
    assert.ok(ds.every((d) => d.help.length > 0));
    create(MetricDescriptorSchema, ds[0]!);
  });
  it("can be limited to groups", () => {
    const only = metricDescriptors(["network"]);
    assert.ok(only.length > 0 && only.every((d) => d.name.startsWith("container_network_")));
  });
});

describe("buildPodSandboxMetrics", () => {
  const m = buildPodSandboxMetrics(sample, { c1: { name: "app", image: "busybox:latest" } }, { timestamp: 99n });
  const find = (ms: typeof m.metrics, name: string) => ms.filter((x) => x.name === name);
  it("emits pod series with POD labels and network per interface without lo", () => {
    assert.equal(m.podSandboxId, "pod1");
    const cpu = find(m.metrics, "container_cpu_usage_seconds_total");
    assert.deepEqual(cpu, [{ name: "container_cpu_usage_seconds_total", timestamp: 99n, metricType: MetricType.COUNTER, labelValues: ["pod1", "POD", "", "total"], value: { value: 12n } }]);
    const rx = find(m.metrics, "container_network_receive_bytes_total");
    assert.deepEqual(rx.map((x) => [x.labelValues, x.value.value]), [[["pod1", "POD", "", "eth0"], 100n]]);
    assert.equal(find(m.metrics, "container_network_transmit_errors_total")[0]?.value.value, 4n);
    assert.equal(find(m.metrics, "container_memory_working_set_bytes")[0]?.metricType, MetricType.GAUGE);
  });
  it("emits container series with id, name and image", () => {
    const c = m.containerMetrics[0]!;
    assert.equal(c.containerId, "c1");
    const rss = find(c.metrics, "container_memory_rss")[0]!;
    assert.deepEqual(rss.labelValues, ["c1", "app", "busybox:latest"]);
    assert.equal(rss.value.value, 2n);
    assert.equal(find(c.metrics, "container_cpu_user_seconds_total")[0]?.value.value, 2n);
    assert.equal(find(c.metrics, "container_processes")[0]?.value.value, 3n);
    assert.equal(find(c.metrics, "container_fs_usage_bytes")[0]?.value.value, 8192n);
    assert.equal(find(c.metrics, "container_spec_memory_limit_bytes")[0]?.value.value, 1024n);
    assert.equal(find(c.metrics, "container_oom_events_total")[0]?.value.value, 1n);
    assert.deepEqual(find(c.metrics, "container_hugetlb_usage_bytes")[0]?.labelValues, ["c1", "app", "busybox:latest", "2MB"]);
    assert.equal(find(c.metrics, "container_network_receive_bytes_total").length, 0);
    // every value's labels match its descriptor's keys
    const keys = new Map(metricDescriptors().map((d) => [d.name, d.labelKeys.length]));
    for (const x of [...m.metrics, ...c.metrics]) assert.equal(x.labelValues.length, keys.get(x.name), x.name);
    const msg = create(PodSandboxMetricsSchema, m);
    assert.equal(msg.containerMetrics[0]?.metrics.length, c.metrics.length);
  });
});
