// cgroup v1 readers: one function per controller, each given the controller's
// directory for the cgroup. A missing file gives undefined, not an error.

import { join } from "node:path";
import { floorZero, hugetlbPageSize, limitOrUndefined, parseFlatKeyed } from "./parse.ts";
import { listOptional, readNumber, readOptional } from "./read-file.ts";
import type { CpuStats, HugetlbStats, MemoryStats, PidsStats } from "./types.ts";

const keyed = async (dir: string, file: string) => parseFlatKeyed((await readOptional(join(dir, file))) ?? "");

/** USER_HZ is 100 on every Linux architecture berth runs on. */
const NANOS_PER_TICK = 10_000_000n;

export async function readCpuV1(cpuacctDir: string, cpuDir: string | undefined, timestamp: bigint): Promise<CpuStats | undefined> {
  const usage = await readNumber(cpuacctDir, "cpuacct.usage");
  if (usage === undefined) return undefined;
  let user = await readNumber(cpuacctDir, "cpuacct.usage_user");
  let system = await readNumber(cpuacctDir, "cpuacct.usage_sys");
  if (user === undefined || system === undefined) {
    const ticks = await keyed(cpuacctDir, "cpuacct.stat");
    const u = ticks.get("user"), s = ticks.get("system");
    user = u === undefined ? undefined : u * NANOS_PER_TICK;
    system = s === undefined ? undefined : s * NANOS_PER_TICK;
  }
  const out: CpuStats = { timestamp, usageCoreNanoSeconds: usage };
  if (user !== undefined) out.userNanoSeconds = user;
  if (system !== undefined) out.systemNanoSeconds = system;
  if (cpuDir) {
    const st = await keyed(cpuDir, "cpu.stat");
    setIf(out, "periods", st.get("nr_periods"));
    setIf(out, "throttledPeriods", st.get("nr_throttled"));
    setIf(out, "throttledNanoSeconds", st.get("throttled_time"));
  }
  return out;
}

export async function readMemoryV1(dir: string, timestamp: bigint): Promise<MemoryStats | undefined> {
  const usage = await readNumber(dir, "memory.usage_in_bytes");
  if (usage === undefined) return undefined;
  const st = await keyed(dir, "memory.stat");
  const stat = (name: string) => st.get(`total_${name}`) ?? st.get(name);
  const workingSet = floorZero(usage - (stat("inactive_file") ?? 0n));
  const out: MemoryStats = {
    timestamp,
    usageBytes: usage,
    workingSetBytes: workingSet,
    rssBytes: stat("rss") ?? 0n,
    pageFaults: stat("pgfault") ?? 0n,
    majorPageFaults: stat("pgmajfault") ?? 0n,
  };
  setIf(out, "cacheBytes", stat("cache"));
  setIf(out, "mappedFileBytes", stat("mapped_file"));
  const memsw = await readNumber(dir, "memory.memsw.usage_in_bytes");
  if (memsw !== undefined) out.swapBytes = floorZero(memsw - usage);
  setIf(out, "kernelBytes", await readNumber(dir, "memory.kmem.usage_in_bytes"));
  setIf(out, "maxUsageBytes", await readNumber(dir, "memory.max_usage_in_bytes"));
  setIf(out, "failcnt", await readNumber(dir, "memory.failcnt"));
  setIf(out, "oomKills", (await keyed(dir, "memory.oom_control")).get("oom_kill"));
  const limit = limitOrUndefined(await readNumber(dir, "memory.limit_in_bytes"));
  if (limit !== undefined) {
    out.limitBytes = limit;
    out.availableBytes = floorZero(limit - workingSet);
  }
  return out;
}

export async function readPids(dir: string, timestamp: bigint): Promise<PidsStats | undefined> {
  const count = await readNumber(dir, "pids.current");
  if (count === undefined) return undefined;
  const out: PidsStats = { timestamp, count };
  setIf(out, "limit", limitOrUndefined(await readNumber(dir, "pids.max")));
  return out;
}

/** v1 hugetlb: hugetlb.<size>.usage_in_bytes and .max_usage_in_bytes. */
export async function readHugetlbV1(dir: string): Promise<HugetlbStats[]> {
  const sizes = (await listOptional(dir)).map((n) => hugetlbPageSize(n, "usage_in_bytes")).filter((s) => s !== undefined);
  const out: HugetlbStats[] = [];
  for (const pageSize of sizes.sort()) {
    const usage = await readNumber(dir, `hugetlb.${pageSize}.usage_in_bytes`);
    if (usage === undefined) continue;
    const h: HugetlbStats = { pageSize, usageBytes: usage };
    setIf(h, "maxUsageBytes", await readNumber(dir, `hugetlb.${pageSize}.max_usage_in_bytes`));
    out.push(h);
  }
  return out;
}

export function setIf<T extends object, K extends keyof T>(obj: T, key: K, v: T[K] | undefined): void {
  if (v !== undefined) obj[key] = v;
}
