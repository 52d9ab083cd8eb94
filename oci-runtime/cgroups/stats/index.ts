export type { CgroupStats, CgroupStatsSource, CpuStats, HugetlbStats, MemoryStats, PidsStats } from "./types.ts";
export { CgroupStatsReader, type CgroupDirs, type CgroupStatsReaderOptions } from "./cgroup-stats-reader.ts";
export { type CgroupMode, type CgroupLayout, type CgroupHierarchy, cgroupDirIn, hierarchyOf } from "../mode.ts";
export { epochNanos } from "./clock.ts";
