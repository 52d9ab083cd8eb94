// Gathers container and pod sandbox statistics for the stats RPCs: cgroup
// numbers, CPU rate between samples, writable layer usage and pod network
// counters. Samples are cached briefly so listing many containers (or
// several callers at once) costs one read per container per period.

import { CgroupStatsReader } from "../../oci-runtime/cgroups/stats/cgroup-stats-reader.ts";
import { epochNanos } from "../../oci-runtime/cgroups/stats/clock.ts";
import type { CgroupStats, CgroupStatsSource, CpuStats, MemoryStats } from "../../oci-runtime/cgroups/stats/types.ts";
import { isNotFound } from "../../oci-runtime/foundation/errdefs.ts";
import { type Logger, log as rootLog } from "../../oci-runtime/foundation/log.ts";
import { nanoCores, type CpuPoint } from "./cpu-rate.ts";
import {
  type ContainerStats, type CpuUsage, type IoUsage, type MemoryUsage, type PodSandboxStats,
  toCpuUsage, toCriPsi, toFilesystemUsage, toMemoryUsage, toNetworkUsage, toProcessUsage,
} from "./cri-shapes.ts";
import { directoryUsage, type DiskUsage } from "../../oci-runtime/foundation/disk-usage.ts";
import { mapLimit } from "../../oci-runtime/foundation/semaphore.ts";
import { type InterfaceCounters, readNetDev } from "./net-dev.ts";
import { TtlCache } from "./ttl-cache.ts";
import { monotonicMs } from "../../oci-runtime/foundation/clock.ts";

export interface ContainerStatsTarget<A = unknown> {
  id: string;
  /** cgroupfs-driver path as given to the OCI runtime, e.g. "/kubepods/pod1/abc"; none (no cpu/memory) for a container that is not running. */
  cgroupsPath?: string;
  /** The container's writable (overlay upper) directory; no writableLayer without it. */
  writableLayerDir?: string;
  /** fsId.mountpoint reported for the writable layer; defaults to writableLayerDir. */
  fsMountpoint?: string;
  /** Passed through to the result unchanged (CRI ContainerAttributes). */
  attributes: A;
}

export interface PodStatsTarget<PA = unknown, CA = unknown> {
  id: string;
  /** The pod's cgroup parent; without it cpu/memory/process are summed over the containers. */
  cgroupsPath?: string;
  /** A process inside the pod's network namespace (the infra process); no network stats without it. */
  netnsPid?: number;
  /** Interface reported as defaultInterface (default "eth0"). */
  defaultInterface?: string;
  attributes: PA;
  containers: ContainerStatsTarget<CA>[];
}

/** The raw numbers behind one container's stats (also what metrics are built from). */
export interface ContainerSample {
  id: string;
  cgroup?: CgroupStats;
  nanoCores?: bigint;
  disk?: DiskUsage & { timestamp: bigint };
}

export interface PodSample {
  id: string;
  cgroup?: CgroupStats;
  nanoCores?: bigint;
  network?: { timestamp: bigint; interfaces: InterfaceCounters[] };
  containers: ContainerSample[];
}

export interface StatsCollectorOptions {
  cgroups?: CgroupStatsSource;
  /** How long a cgroup/network sample is reused (default 1000 ms). */
  cacheTtlMs?: number;
  /** How long a writable layer walk is reused (default 5000 ms). */
  diskCacheTtlMs?: number;
  /** Containers sampled at once by the list calls (default 16). */
  concurrency?: number;
  /** Filesystem calls in flight per writable layer walk (default 8). */
  diskConcurrency?: number;
  diskUsage?: (dir: string) => Promise<DiskUsage>;
  netDev?: (pid: number) => Promise<InterfaceCounters[]>;
  /** Epoch nanoseconds for disk and network timestamps. */
  now?: () => bigint;
  /** Monotonic milliseconds for the caches. */
  monotonicMs?: () => number;
  log?: Logger;
}

interface CgroupSample { cgroup?: CgroupStats; nanoCores?: bigint }

export class StatsCollector {
  readonly #cgroups: CgroupStatsSource;
  readonly #concurrency: number;
  readonly #diskUsage: (dir: string) => Promise<DiskUsage>;
  readonly #netDev: (pid: number) => Promise<InterfaceCounters[]>;
  readonly #now: () => bigint;
  readonly #log: Logger;
  readonly #cgCache: TtlCache<CgroupSample>;
  readonly #diskCache: TtlCache<DiskUsage & { timestamp: bigint }>;
  readonly #netCache: TtlCache<{ timestamp: bigint; interfaces: InterfaceCounters[] }>;
  /** Last CPU point per cgroup key, with when it was taken (monotonic ms) so stale ones can be pruned. */
  readonly #prev = new Map<string, CpuPoint & { at: number }>();
  readonly #monotonicMs: () => number;

  constructor(opts: StatsCollectorOptions = {}) {
    this.#cgroups = opts.cgroups ?? new CgroupStatsReader();
    this.#concurrency = opts.concurrency ?? 16;
    const diskConcurrency = opts.diskConcurrency ?? 8;
    this.#diskUsage = opts.diskUsage ?? ((dir) => directoryUsage(dir, { concurrency: diskConcurrency }));
    this.#netDev = opts.netDev ?? ((pid) => readNetDev(pid));
    this.#now = opts.now ?? epochNanos;
    this.#log = opts.log ?? rootLog.child({ component: "stats" });
    this.#monotonicMs = opts.monotonicMs ?? monotonicMs;
    this.#cgCache = new TtlCache(opts.cacheTtlMs ?? 1000, opts.monotonicMs);
    this.#diskCache = new TtlCache(opts.diskCacheTtlMs ?? 5000, opts.monotonicMs);
    this.#netCache = new TtlCache(opts.cacheTtlMs ?? 1000, opts.monotonicMs);
  }

  // ---- raw samples -------------------------------------------------------

  async containerSample(t: ContainerStatsTarget<unknown>): Promise<ContainerSample> {
    const [cg, disk] = await Promise.all([
      t.cgroupsPath ? this.#cgroupSample(`c:${t.id}`, t.cgroupsPath) : ({} as CgroupSample),
      t.writableLayerDir ? this.#diskSample(t.writableLayerDir) : undefined,
    ]);
    const out: ContainerSample = { id: t.id, ...cg };
    if (disk) out.disk = disk;
    return out;
  }

  async podSample(t: PodStatsTarget<unknown, unknown>): Promise<PodSample> {
    const [cg, network, containers] = await Promise.all([
      t.cgroupsPath ? this.#cgroupSample(`p:${t.id}`, t.cgroupsPath) : ({} as CgroupSample),
      t.netnsPid ? this.#networkSample(t.id, t.netnsPid) : undefined,
      mapLimit(t.containers, this.#concurrency, (c) => this.#safeContainerSample(c)),
    ]);
    const out: PodSample = { id: t.id, ...cg, containers };
    if (network) out.network = network;
    return out;
  }

  // ---- CRI-shaped results -----------------------------------------------

  /** Stats of one container. A container without a cgroup (not running) gets no cpu/memory. */
  async containerStats<A>(t: ContainerStatsTarget<A>): Promise<ContainerStats<A>> {
    return this.#toContainerStats(t, await this.containerSample(t));
  }

  /** Stats of many containers, sampled concurrently; a container that fails is reported without numbers. */
  listContainerStats<A>(targets: ContainerStatsTarget<A>[]): Promise<ContainerStats<A>[]> {
    this.prune();
    return mapLimit(targets, this.#concurrency, async (t) => this.#toContainerStats(t, await this.#safeContainerSample(t)));
  }

  async podSandboxStats<PA, CA>(t: PodStatsTarget<PA, CA>): Promise<PodSandboxStats<PA, CA>> {
    const s = await this.podSample(t);
    const containers = t.containers.map((c, i) => this.#toContainerStats(c, s.containers[i]!));
    const linux: PodSandboxStats<PA, CA>["linux"] = { containers };
    const agg = t.cgroupsPath ? s : aggregate(s.containers);
    if (agg.cgroup?.cpu) linux.cpu = toCpuUsage(agg.cgroup.cpu, agg.nanoCores);
    if (agg.cgroup?.memory) linux.memory = toMemoryUsage(agg.cgroup.memory);
    if (agg.cgroup?.pids) linux.process = toProcessUsage(agg.cgroup.pids);
    // PSI averages do not add up: only a pod cgroup of its own has them.
    if (t.cgroupsPath) addPsi(linux, agg.cgroup);
    if (s.network) linux.network = toNetworkUsage(s.network.interfaces, s.network.timestamp, t.defaultInterface);
    return { attributes: t.attributes, linux };
  }

  listPodSandboxStats<PA, CA>(targets: PodStatsTarget<PA, CA>[]): Promise<PodSandboxStats<PA, CA>[]> {
    this.prune();
    return mapLimit(targets, Math.max(1, Math.ceil(this.#concurrency / 4)), (t) => this.podSandboxStats(t));
  }

  /** Drops the cached samples and CPU history of a removed container or pod. */
  forget(id: string): void {
    for (const k of [`c:${id}`, `p:${id}`]) {
      this.#prev.delete(k);
      this.#cgCache.delete(k);
    }
    this.#netCache.delete(id);
  }

  /**
   * Drops expired cache entries and CPU history not refreshed for `historyMs`
   * (default 10 minutes). The list calls do this on their own.
   */
  prune(historyMs = 600_000): void {
    const now = this.#monotonicMs();
    for (const [k, p] of this.#prev) if (now - p.at > historyMs) this.#prev.delete(k);
    this.#cgCache.prune();
    this.#diskCache.prune();
    this.#netCache.prune();
  }

  // ---- internals ---------------------------------------------------------

  #toContainerStats<A>(t: ContainerStatsTarget<A>, s: ContainerSample): ContainerStats<A> {
    const out: ContainerStats<A> = { attributes: t.attributes };
    if (s.cgroup?.cpu) out.cpu = toCpuUsage(s.cgroup.cpu, s.nanoCores);
    if (s.cgroup?.memory) out.memory = toMemoryUsage(s.cgroup.memory);
    addPsi(out, s.cgroup);
    if (s.disk) out.writableLayer = toFilesystemUsage(s.disk, t.fsMountpoint ?? t.writableLayerDir!, s.disk.timestamp);
    return out;
  }

  async #safeContainerSample(t: ContainerStatsTarget<unknown>): Promise<ContainerSample> {
    try {
      return await this.containerSample(t);
    } catch (err) {
      this.#log.warn("container stats failed", { id: t.id, err });
      return { id: t.id };
    }
  }

  #cgroupSample(key: string, cgroupsPath: string): Promise<CgroupSample> {
    return this.#cgCache.get(key, async () => {
      let cgroup: CgroupStats;
      try {
        cgroup = await this.#cgroups.read(cgroupsPath);
      } catch (err) {
        if (!isNotFound(err)) throw err;
        this.#prev.delete(key);
        return {};
      }
      const out: CgroupSample = { cgroup };
      if (cgroup.cpu) {
        const rate = nanoCores(this.#prev.get(key), cgroup.cpu);
        if (rate !== undefined) out.nanoCores = rate;
        this.#prev.set(key, { timestamp: cgroup.cpu.timestamp, usageCoreNanoSeconds: cgroup.cpu.usageCoreNanoSeconds, at: this.#monotonicMs() });
      }
      return out;
    });
  }

  async #diskSample(dir: string): Promise<(DiskUsage & { timestamp: bigint }) | undefined> {
    try {
      return await this.#diskCache.get(dir, async () => {
        const timestamp = this.#now();
        return { ...(await this.#diskUsage(dir)), timestamp };
      });
    } catch (err) {
      if (!isNotFound(err)) this.#log.warn("writable layer usage failed", { dir, err });
      return undefined;
    }
  }

  async #networkSample(podId: string, pid: number): Promise<{ timestamp: bigint; interfaces: InterfaceCounters[] } | undefined> {
    try {
      return await this.#netCache.get(podId, async () => {
        const timestamp = this.#now();
        return { timestamp, interfaces: await this.#netDev(pid) };
      });
    } catch (err) {
      if (!isNotFound(err)) this.#log.warn("pod network stats failed", { id: podId, pid, err });
      return undefined;
    }
  }
}

/** Sets cpu.psi, memory.psi and io (timestamp + psi) from the cgroup's pressure files, where present. */
function addPsi(out: { cpu?: CpuUsage; memory?: MemoryUsage; io?: IoUsage }, cg: CgroupStats | undefined): void {
  if (!cg?.psi) return;
  const cpu = toCriPsi(cg.psi.cpu);
  const memory = toCriPsi(cg.psi.memory);
  const io = toCriPsi(cg.psi.io);
  if (cpu && out.cpu) out.cpu.psi = cpu;
  if (memory && out.memory) out.memory.psi = memory;
  if (io) out.io = { timestamp: cg.psiTimestamp ?? 0n, psi: io };
}

/** Pod-level numbers as sums over the containers, for pods without their own cgroup. */
export function aggregate(samples: ContainerSample[]): CgroupSample {
  const withCg = samples.filter((s) => s.cgroup);
  if (withCg.length === 0) return {};
  const cpus = withCg.map((s) => s.cgroup!.cpu).filter((c) => c !== undefined);
  const mems = withCg.map((s) => s.cgroup!.memory).filter((m) => m !== undefined);
  const pids = withCg.map((s) => s.cgroup!.pids).filter((p) => p !== undefined);
  const sum = (xs: bigint[]) => xs.reduce((a, b) => a + b, 0n);
  const maxTs = (xs: { timestamp: bigint }[]) => xs.reduce((a, b) => (b.timestamp > a ? b.timestamp : a), 0n);
  const cgroup: CgroupStats = { version: withCg[0]!.cgroup!.version, hugetlb: [] };
  if (cpus.length) {
    cgroup.cpu = { timestamp: maxTs(cpus), usageCoreNanoSeconds: sum(cpus.map((c: CpuStats) => c.usageCoreNanoSeconds)) };
  }
  if (mems.length) {
    cgroup.memory = {
      timestamp: maxTs(mems),
      usageBytes: sum(mems.map((m: MemoryStats) => m.usageBytes)),
      workingSetBytes: sum(mems.map((m) => m.workingSetBytes)),
      rssBytes: sum(mems.map((m) => m.rssBytes)),
      pageFaults: sum(mems.map((m) => m.pageFaults)),
      majorPageFaults: sum(mems.map((m) => m.majorPageFaults)),
    };
  }
  if (pids.length) cgroup.pids = { timestamp: maxTs(pids), count: sum(pids.map((p) => p.count)) };
  const out: CgroupSample = { cgroup };
  const rates = withCg.filter((s) => s.cgroup!.cpu).map((s) => s.nanoCores);
  if (rates.length && rates.every((r) => r !== undefined)) out.nanoCores = sum(rates as bigint[]);
  return out;
}
