// CRI LinuxContainerResources -> OCI linux.resources; oom_score_adj clamped to what the kernel lets us set.
import { readFileSync } from "node:fs";
import { invalidArgument } from "../foundation/errdefs.ts";
import type { LinuxResources, SpecOpt } from "./types.ts";

export interface CriResources {
  cpuPeriod?: number | bigint;
  cpuQuota?: number | bigint;
  cpuShares?: number | bigint;
  memoryLimitInBytes?: number | bigint;
  memorySwapLimitInBytes?: number | bigint;
  oomScoreAdj?: number | bigint;
  cpusetCpus?: string;
  cpusetMems?: string;
  hugepageLimits?: { pageSize: string; limit: number | bigint }[];
  unified?: Record<string, string>;
  /** Not a CRI container field; for callers that want a per-container pids limit. */
  pidsLimit?: number;
}

export interface ResourceContext {
  /** cgroup v2 unified host ("unified" keys are only valid there). */
  cgroupV2: boolean;
  /** The lowest oom_score_adj this process may set (its own); default read from /proc/self/oom_score_adj. */
  minOomScoreAdj?: number;
}

/** berthd's own oom_score_adj: the kernel refuses lower values from an unprivileged-for-that caller. */
export function ownOomScoreAdj(path = "/proc/self/oom_score_adj"): number {
  try {
    const n = Number.parseInt(readFileSync(path, "utf8").trim(), 10);
    return Number.isInteger(n) ? n : 0;
  } catch {
    return 0;
  }
}

/** Clamps to [max(min, -1000), 1000]. */
export function clampOomScoreAdj(value: number, min: number): number {
  return Math.min(1000, Math.max(value, min, -1000));
}

const num = (v: number | bigint | undefined) => (v === undefined ? 0 : Number(v));

/** Builds OCI resources from CRI resources (pure apart from defaults). */
export function ociResources(r: CriResources, ctx: ResourceContext): LinuxResources {
  const out: LinuxResources = {};
  const cpu: NonNullable<LinuxResources["cpu"]> = {};
  if (num(r.cpuPeriod) > 0) cpu.period = num(r.cpuPeriod);
  if (num(r.cpuQuota) !== 0) cpu.quota = num(r.cpuQuota);
  if (num(r.cpuShares) > 0) cpu.shares = num(r.cpuShares);
  if (r.cpusetCpus) cpu.cpus = r.cpusetCpus;
  if (r.cpusetMems) cpu.mems = r.cpusetMems;
  if (Object.keys(cpu).length) out.cpu = cpu;
  const mem: NonNullable<LinuxResources["memory"]> = {};
  if (num(r.memoryLimitInBytes) > 0) mem.limit = num(r.memoryLimitInBytes);
  if (num(r.memorySwapLimitInBytes) !== 0) {
    if (!mem.limit) throw invalidArgument("memory_swap_limit_in_bytes is set without memory_limit_in_bytes");
    if (num(r.memorySwapLimitInBytes) > 0 && num(r.memorySwapLimitInBytes) < mem.limit) {
      throw invalidArgument(`memory_swap_limit_in_bytes ${num(r.memorySwapLimitInBytes)} is below memory_limit_in_bytes ${mem.limit}`);
    }
    mem.swap = num(r.memorySwapLimitInBytes);
  }
  if (Object.keys(mem).length) out.memory = mem;
  if (r.hugepageLimits?.length) {
    out.hugepageLimits = r.hugepageLimits.map((h) => {
      if (!/^\d+(?:KB|MB|GB|TB|PB)$/.test(h.pageSize)) throw invalidArgument(`invalid hugepage size "${h.pageSize}"`);
      return { pageSize: h.pageSize, limit: num(h.limit) };
    });
  }
  if (r.pidsLimit !== undefined && r.pidsLimit !== 0) out.pids = { limit: r.pidsLimit };
  if (r.unified && Object.keys(r.unified).length) {
    if (!ctx.cgroupV2) throw invalidArgument(`unified cgroup resources (${Object.keys(r.unified).join(", ")}) require a cgroup v2 host`);
    for (const k of Object.keys(r.unified)) {
      if (!/^[a-z_]+\.[a-z_.]+$/.test(k)) throw invalidArgument(`invalid unified cgroup key "${k}"`);
    }
    out.unified = { ...r.unified };
  }
  return out;
}

/** Sets linux.resources (keeping device rules) and process.oomScoreAdj (clamped). */
export const withResources = (r: CriResources, ctx: ResourceContext): SpecOpt<unknown> => (spec) => {
  const linux = (spec.linux ??= {});
  const devices = linux.resources?.devices;
  linux.resources = { ...ociResources(r, ctx), ...(devices ? { devices } : {}) };
  if (r.oomScoreAdj !== undefined) {
    spec.process!.oomScoreAdj = clampOomScoreAdj(num(r.oomScoreAdj), ctx.minOomScoreAdj ?? ownOomScoreAdj());
  }
};

/** Sets process.oomScoreAdj clamped to what this process may set. */
export const withOomScoreAdj = (value: number, minOomScoreAdj = ownOomScoreAdj()): SpecOpt<unknown> => (spec) => {
  spec.process!.oomScoreAdj = clampOomScoreAdj(value, minOomScoreAdj);
};
