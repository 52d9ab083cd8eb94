import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, toBinary, fromBinary } from "@bufbuild/protobuf";
import { ContainerStatsSchema, PodSandboxStatsSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import type { CgroupStats, CgroupStatsSource } from "../../oci-runtime/cgroups/stats/types.ts";
import { notFound } from "../../oci-runtime/foundation/errdefs.ts";
import { createLogger } from "../../oci-runtime/foundation/log.ts";
import { nanoCores } from "./cpu-rate.ts";
import { StatsCollector, type ContainerStatsTarget } from "./stats-collector.ts";
import { TtlCache } from "./ttl-cache.ts";

const quiet = createLogger({}, () => {});
const SEC = 1_000_000_000n;

/** A fake cgroup tree: usage per path, advanced by the test. */
class FakeCgroups implements CgroupStatsSource {
  reads = new Map<string, number>();
  usage = new Map<string, bigint>();
  clock = 1000n * SEC;
  async read(path: string): Promise<CgroupStats> {
    this.reads.set(path, (this.reads.get(path) ?? 0) + 1);
    const u = this.usage.get(path);
    if (u === undefined) throw notFound(`cgroup ${path} not found`);
    const ts = this.clock;
    return {
      version: 1,
      cpu: { timestamp: ts, usageCoreNanoSeconds: u },
      memory: { timestamp: ts, usageBytes: 300n, workingSetBytes: 200n, rssBytes: 100n, pageFaults: 5n, majorPageFaults: 1n, limitBytes: 1000n, availableBytes: 800n },
      pids: { timestamp: ts, count: 2n },
      hugetlb: [],
    };
  }
}

function setup() {
  const cg = new FakeCgroups();
  let ms = 0;
  const collector = new StatsCollector({
    cgroups: cg, cacheTtlMs: 1000, monotonicMs: () => ms, now: () => cg.clock, log: quiet,
    diskUsage: async () => ({ bytes: 4096n, inodes: 3n }),
    netDev: async () => [
      { name: "lo", rxBytes: 1n, rxPackets: 1n, rxErrors: 0n, rxDropped: 0n, txBytes: 1n, txPackets: 1n, txErrors: 0n, txDropped: 0n },
      { name: "eth0", rxBytes: 100n, rxPackets: 2n, rxErrors: 1n, rxDropped: 0n, txBytes: 50n, txPackets: 1n, txErrors: 0n, txDropped: 0n },
    ],
  });
  const advance = (msStep: number) => { ms += msStep; cg.clock += BigInt(msStep) * 1_000_000n; };
  return { cg, collector, advance };
}

const target = (id: string, extra: Partial<ContainerStatsTarget<{ id: string }>> = {}): ContainerStatsTarget<{ id: string }> =>
  ({ id, cgroupsPath: `/kubepods/pod1/${id}`, attributes: { id }, ...extra });

describe("nanoCores", () => {
  it("is the usage delta per elapsed time", () => {
    assert.equal(nanoCores({ timestamp: 0n, usageCoreNanoSeconds: 0n }, { timestamp: 2n * SEC, usageCoreNanoSeconds: SEC }), 500_000_000n);
  });
  it("is undefined without a previous sample, or when time or usage goes back", () => {
    assert.equal(nanoCores(undefined, { timestamp: 1n, usageCoreNanoSeconds: 1n }), undefined);
    assert.equal(nanoCores({ timestamp: 5n, usageCoreNanoSeconds: 0n }, { timestamp: 5n, usageCoreNanoSeconds: 1n }), undefined);
    assert.equal(nanoCores({ timestamp: 0n, usageCoreNanoSeconds: 9n }, { timestamp: 5n, usageCoreNanoSeconds: 1n }), undefined);
  });
});

describe("TtlCache", () => {
  it("shares a load within the ttl, reloads after, and does not keep failures", async () => {
    let t = 0, loads = 0;
    const c = new TtlCache<number>(100, () => t);
    const load = async () => ++loads;
    assert.equal(await c.get("a", load), 1);
    t = 99;
    assert.equal(await c.get("a", load), 1);
    t = 100;
    assert.equal(await c.get("a", load), 2);
    await assert.rejects(c.get("b", () => Promise.reject(new Error("boom"))));
    await new Promise((r) => setImmediate(r));
    assert.equal(await c.get("b", load), 3);
  });
});

describe("StatsCollector", () => {
  it("reports usage, and nanoCores from the second uncached sample on", async () => {
    const { cg, collector, advance } = setup();
    cg.usage.set("/kubepods/pod1/a", 10n * SEC);
    const first = await collector.containerStats(target("a"));
    assert.equal(first.cpu?.usageCoreNanoSeconds.value, 10n * SEC);
    assert.equal(first.cpu?.usageNanoCores, undefined);
    assert.equal(first.memory?.workingSetBytes.value, 200n);
    assert.equal(first.memory?.availableBytes?.value, 800n);
    cg.usage.set("/kubepods/pod1/a", 11n * SEC);
    advance(2000);
    const second = await collector.containerStats(target("a"));
    assert.equal(second.cpu?.usageNanoCores?.value, 500_000_000n);
  });

  it("caches samples for the ttl so repeated lists read each cgroup once", async () => {
    const { cg, collector, advance } = setup();
    const ids = Array.from({ length: 100 }, (_, i) => `c${i}`);
    for (const id of ids) cg.usage.set(`/kubepods/pod1/${id}`, 1n);
    const targets = ids.map((id) => target(id));
    const [a, b] = await Promise.all([collector.listContainerStats(targets), collector.listContainerStats(targets)]);
    advance(500);
    await collector.listContainerStats(targets);
    assert.equal(a.length, 100);
    assert.deepEqual(a.map((s) => s.attributes.id), ids);
    assert.deepEqual(b, a);
    assert.ok([...cg.reads.values()].every((n) => n === 1), "one read per cgroup within the ttl");
    advance(600);
    await collector.listContainerStats(targets);
    assert.ok([...cg.reads.values()].every((n) => n === 2), "re-read after the ttl");
  });

  it("gives a container without a cgroup no cpu/memory, but keeps its writable layer", async () => {
    const { collector } = setup();
    const s = await collector.containerStats(target("gone", { writableLayerDir: "/var/lib/berth/upper/gone", fsMountpoint: "/var/lib/berth" }));
    assert.deepEqual(s, {
      attributes: { id: "gone" },
      writableLayer: { timestamp: 1000n * SEC, fsId: { mountpoint: "/var/lib/berth" }, usedBytes: { value: 4096n }, inodesUsed: { value: 3n } },
    });
  });

  it("reads no cgroup at all for a target without a cgroups path (a stopped container)", async () => {
    const { cg, collector } = setup();
    cg.usage.set("", 5n * SEC);
    const { cgroupsPath: _, ...noCgroup } = target("stopped", { writableLayerDir: "/var/lib/berth/upper/stopped" });
    const s = await collector.containerStats(noCgroup);
    assert.equal(s.cpu, undefined);
    assert.equal(s.memory, undefined);
    assert.ok(s.writableLayer);
    assert.equal(cg.reads.size, 0, "no cgroup read");
  });

  it("builds pod stats from the pod cgroup, its netns and its containers", async () => {
    const { cg, collector } = setup();
    cg.usage.set("/kubepods/pod1", 7n);
    cg.usage.set("/kubepods/pod1/a", 3n);
    const p = await collector.podSandboxStats({
      id: "pod1", cgroupsPath: "/kubepods/pod1", netnsPid: 42, attributes: { id: "pod1" }, containers: [target("a")],
    });
    assert.equal(p.linux.cpu?.usageCoreNanoSeconds.value, 7n);
    assert.equal(p.linux.process?.processCount.value, 2n);
    assert.deepEqual(p.linux.network?.interfaces.map((i) => i.name), ["eth0"]);
    assert.equal(p.linux.network?.defaultInterface?.rxBytes.value, 100n);
    assert.equal(p.linux.network?.defaultInterface?.rxErrors.value, 1n);
    assert.equal(p.linux.containers.length, 1);
    assert.equal(p.linux.containers[0]?.cpu?.usageCoreNanoSeconds.value, 3n);
    // the plain object is accepted by the generated CRI message as is
    const msg = create(PodSandboxStatsSchema, { ...p, attributes: { id: "pod1", labels: {}, annotations: {} } });
    const back = fromBinary(PodSandboxStatsSchema, toBinary(PodSandboxStatsSchema, msg));
    assert.equal(back.linux?.network?.defaultInterface?.txBytes?.value, 50n);
    assert.equal(back.linux?.containers[0]?.memory?.rssBytes?.value, 100n);
  });

  it("sums containers when the pod has no cgroup of its own", async () => {
    const { cg, collector } = setup();
    cg.usage.set("/kubepods/pod1/a", 3n);
    cg.usage.set("/kubepods/pod1/b", 4n);
    const p = await collector.podSandboxStats({ id: "pod1", attributes: {}, containers: [target("a"), target("b")] });
    assert.equal(p.linux.cpu?.usageCoreNanoSeconds.value, 7n);
    assert.equal(p.linux.memory?.workingSetBytes.value, 400n);
    assert.equal(p.linux.process?.processCount.value, 4n);
    assert.equal(p.linux.network, undefined);
  });

  it("forget drops the cpu history", async () => {
    const { cg, collector, advance } = setup();
    cg.usage.set("/kubepods/pod1/a", 1n);
    await collector.containerStats(target("a"));
    collector.forget("a");
    advance(10);
    const s = await collector.containerStats(target("a"));
    assert.equal(s.cpu?.usageNanoCores, undefined);
    const msg = create(ContainerStatsSchema, { ...s, attributes: { id: "a" } });
    assert.equal(msg.cpu?.usageCoreNanoSeconds?.value, 1n);
  });
});

describe("StatsCollector.prune", () => {
  it("drops cpu history not refreshed for the history window", async () => {
    const { cg, collector, advance } = setup();
    cg.usage.set("/kubepods/pod1/a", 1n);
    await collector.containerStats(target("a"));
    advance(2000);
    collector.prune(1000);
    const s = await collector.containerStats(target("a"));
    assert.equal(s.cpu?.usageNanoCores, undefined, "no previous point after prune");
    advance(2000);
    collector.prune(5000);
    assert.equal((await collector.containerStats(target("a"))).cpu?.usageNanoCores?.value, 0n, "kept within the window (idle: 0 cores)");
  });
});
