export type { CgroupStats, CgroupStatsSource, CpuStats, HugetlbStats, MemoryStats, PidsStats } from "./types.ts";
export { CgroupStatsReader, type CgroupDirs, type CgroupStatsReaderOptions } from "./cgroup-stats-reader.ts";
export { type CgroupMode, type CgroupMount, type CgroupMounts, cgroupDir, cgroupMode, loadCgroupMounts, parseCgroupMounts } from "./mountinfo.ts";
export { epochNanos } from "./clock.ts";
