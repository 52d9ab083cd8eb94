// Plain cgroup statistics, the same shape for cgroup v1 and v2. All counters
// are bigint so they map straight onto CRI's UInt64Value; timestamps are
// nanoseconds since the Unix epoch.

export interface CpuStats {
  timestamp: bigint;
  /** Total CPU time consumed by all tasks, in nanoseconds. */
  usageCoreNanoSeconds: bigint;
  userNanoSeconds?: bigint;
  systemNanoSeconds?: bigint;
  /** CFS enforcement periods elapsed / throttled, and total throttled time. */
  periods?: bigint;
  throttledPeriods?: bigint;
  throttledNanoSeconds?: bigint;
}

export interface MemoryStats {
  timestamp: bigint;
  usageBytes: bigint;
  /** usage minus inactive file cache, floored at 0 (what kubelet evicts on). */
  workingSetBytes: bigint;
  rssBytes: bigint;
  cacheBytes?: bigint;
  mappedFileBytes?: bigint;
  swapBytes?: bigint;
  kernelBytes?: bigint;
  pageFaults: bigint;
  majorPageFaults: bigint;
  /** Absent when the cgroup has no memory limit. */
  limitBytes?: bigint;
  /** limit minus working set (floored at 0); absent without a limit. */
  availableBytes?: bigint;
  maxUsageBytes?: bigint;
  /** Times usage hit the limit (v1 memory.failcnt, v2 memory.events "max"). */
  failcnt?: bigint;
  oomKills?: bigint;
}

export interface PidsStats {
  timestamp: bigint;
  count: bigint;
  /** Absent when unlimited. */
  limit?: bigint;
}

export interface HugetlbStats {
  /** The kernel's page size name, e.g. "2MB", "1GB". */
  pageSize: string;
  usageBytes: bigint;
  maxUsageBytes?: bigint;
}

/** One line of a *.pressure file: total stall time (microseconds) and running averages (percent). */
export interface PsiData {
  total: bigint;
  avg10: number;
  avg60: number;
  avg300: number;
}

/** "some" (at least one task stalled) and "full" (all non-idle tasks stalled); either may be absent. */
export interface PsiStats {
  some?: PsiData;
  full?: PsiData;
}

/** PSI per resource, from the cgroup's v2 *.pressure files; a resource without its file is absent. */
export interface PressureStats {
  cpu?: PsiStats;
  memory?: PsiStats;
  io?: PsiStats;
}

export interface CgroupStats {
  /** Which hierarchy the cpu/memory/pids numbers came from. */
  version: 1 | 2;
  cpu?: CpuStats;
  memory?: MemoryStats;
  pids?: PidsStats;
  hugetlb: HugetlbStats[];
  /** From the unified (v2) tree, on v2 and hybrid hosts alike; absent where PSI is not available. */
  psi?: PressureStats;
  /** When psi was read (epoch nanoseconds). */
  psiTimestamp?: bigint;
}

/** What the stats collector needs from a cgroup reader (fakes implement this). */
export interface CgroupStatsSource {
  read(cgroupsPath: string): Promise<CgroupStats>;
}
