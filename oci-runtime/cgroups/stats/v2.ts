// cgroup v2 readers: all controllers live in one directory per cgroup.

import { join } from "node:path";
import { floorZero, hugetlbPageSize, limitOrUndefined, parseFlatKeyed } from "./parse.ts";
import { listOptional, readNumber, readOptional } from "./read-file.ts";
import type { CpuStats, HugetlbStats, MemoryStats } from "./types.ts";
import { setIf } from "./v1.ts";

const keyed = async (dir: string, file: string) => {
  const text = await readOptional(join(dir, file));
  return text === undefined ? undefined : parseFlatKeyed(text);
};
const usecToNs = (v: bigint | undefined) => (v === undefined ? undefined : v * 1000n);

export async function readCpuV2(dir: string, timestamp: bigint): Promise<CpuStats | undefined> {
  const st = await keyed(dir, "cpu.stat");
  const usage = st?.get("usage_usec");
  if (!st || usage === undefined) return undefined;
  const out: CpuStats = { timestamp, usageCoreNanoSeconds: usage * 1000n };
  setIf(out, "userNanoSeconds", usecToNs(st.get("user_usec")));
  setIf(out, "systemNanoSeconds", usecToNs(st.get("system_usec")));
  setIf(out, "periods", st.get("nr_periods"));
  setIf(out, "throttledPeriods", st.get("nr_throttled"));
  setIf(out, "throttledNanoSeconds", usecToNs(st.get("throttled_usec")));
  return out;
}

export async function readMemoryV2(dir: string, timestamp: bigint): Promise<MemoryStats | undefined> {
  const usage = await readNumber(dir, "memory.current");
  if (usage === undefined) return undefined;
  const st = (await keyed(dir, "memory.stat")) ?? new Map<string, bigint>();
  const workingSet = floorZero(usage - (st.get("inactive_file") ?? 0n));
  const out: MemoryStats = {
    timestamp,
    usageBytes: usage,
    workingSetBytes: workingSet,
    rssBytes: st.get("anon") ?? 0n,
    pageFaults: st.get("pgfault") ?? 0n,
    majorPageFaults: st.get("pgmajfault") ?? 0n,
  };
  setIf(out, "cacheBytes", st.get("file"));
  setIf(out, "mappedFileBytes", st.get("file_mapped"));
  setIf(out, "kernelBytes", st.get("kernel") ?? sumIfAny(st, ["kernel_stack", "pagetables", "sock", "slab", "percpu"]));
  setIf(out, "swapBytes", await readNumber(dir, "memory.swap.current"));
  setIf(out, "maxUsageBytes", await readNumber(dir, "memory.peak"));
  const events = await keyed(dir, "memory.events");
  setIf(out, "failcnt", events?.get("max"));
  setIf(out, "oomKills", events?.get("oom_kill"));
  const limit = limitOrUndefined(await readNumber(dir, "memory.max"));
  if (limit !== undefined) {
    out.limitBytes = limit;
    out.availableBytes = floorZero(limit - workingSet);
  }
  return out;
}

/** v2 hugetlb: hugetlb.<size>.current (there is no max-usage file). */
export async function readHugetlbV2(dir: string): Promise<HugetlbStats[]> {
  const sizes = (await listOptional(dir)).map((n) => hugetlbPageSize(n, "current")).filter((s) => s !== undefined);
  const out: HugetlbStats[] = [];
  for (const pageSize of sizes.sort()) {
    const usage = await readNumber(dir, `hugetlb.${pageSize}.current`);
    if (usage !== undefined) out.push({ pageSize, usageBytes: usage });
  }
  return out;
}

function sumIfAny(st: Map<string, bigint>, keys: string[]): bigint | undefined {
  let sum: bigint | undefined;
  for (const k of keys) {
    const v = st.get(k);
    if (v !== undefined) sum = (sum ?? 0n) + v;
  }
  return sum;
}
