// CPU time a process (all its threads) has used, from /proc/PID/stat: utime + stime in clock
// ticks (USER_HZ, 100 on Linux), returned in milliseconds. Benchmarks report the daemon's CPU per
// operation beside wall time: on a busy machine it varies much less than latency.
import { readdirSync, readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

const TICK_MS = 10;

/** The fields of /proc/PID/stat after the command name, which may hold spaces and parentheses (rest[0] is field 3, state). */
const fieldsAfterComm = (stat: string) => stat.slice(stat.lastIndexOf(")") + 2).split(" ");

/** utime + stime of `pid` in ms, from the text of /proc/PID/stat. */
export function parseStatCpuMs(stat: string): number {
  const rest = fieldsAfterComm(stat);
  // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`unexpected /proc/PID/stat: ${stat.slice(0, 200)}`);
  return (utime + stime) * TICK_MS;
}

export function cpuMs(pid: number): number {
  return parseStatCpuMs(readFileSync(`/proc/${pid}/stat`, "utf8"));
}

/** The sum of cpuMs over `pids` (a process gone meanwhile counts 0). */
export function cpuMsOf(pids: readonly number[]): number {
  let total = 0;
  for (const pid of pids) {
    try { total += cpuMs(pid); } catch { /* exited */ }
  }
  return total;
}

/**
 * CPU of `pids` and of everything they started: their own utime + stime, the cutime + cstime of
 * children they have reaped, and the same for their children still alive, at any depth (berthd
 * unpacks layers in child processes, which may still be alive, idle, when a pull returns).
 */
export function cpuMsWithChildren(pids: readonly number[]): number {
  const stats = new Map<number, { ppid: number; ms: number }>();
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const rest = fieldsAfterComm(readFileSync(`/proc/${e}/stat`, "utf8"));
      // rest[1] is field 4 (ppid); utime, stime, cutime, cstime are fields 14-17.
      stats.set(Number(e), { ppid: Number(rest[1]), ms: (Number(rest[11]) + Number(rest[12]) + Number(rest[13]) + Number(rest[14])) * TICK_MS });
    } catch { /* exited meanwhile */ }
  }
  let total = 0;
  const seen = new Set<number>();
  const queue = [...pids];
  while (queue.length) {
    const pid = queue.shift()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    total += stats.get(pid)?.ms ?? 0;
    for (const [child, s] of stats) if (s.ppid === pid) queue.push(child);
  }
  return total;
}
/** The machine's busy and total CPU time (clock ticks, all CPUs) from the text of /proc/stat. */
export function parseMachineCpu(stat: string): { busy: number; total: number } {
  const line = stat.split("\n", 1)[0] ?? "";
  const f = line.trim().split(/\s+/);
  if (f[0] !== "cpu" || f.length < 5) throw new Error(`unexpected /proc/stat: ${line.slice(0, 200)}`);
  const n = f.slice(1, 11).map(Number); // user nice system idle iowait irq softirq steal (guest is in user)
  if (n.some((x) => !Number.isFinite(x))) throw new Error(`unexpected /proc/stat: ${line.slice(0, 200)}`);
  const total = n.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - n[3]! - n[4]!, total };
}

const machineCpu = () => parseMachineCpu(readFileSync("/proc/stat", "utf8"));

/**
 * Waits at least `minMs`, then until the machine's CPUs were busy less than `busyBelow` of a
 * `windowMs` window (work a round left behind, such as the kernel tearing network namespaces
 * down, is done), or `maxMs` in all. Returns how long it waited and whether it got quiet.
 */
export async function untilQuiet(opts: { minMs: number; maxMs: number; windowMs?: number; busyBelow?: number }): Promise<{ ms: number; quiet: boolean }> {
  const { minMs, maxMs, windowMs = 250, busyBelow = 0.1 } = opts;
  const start = performance.now();
  await sleep(minMs);
  for (;;) {
    const a = machineCpu();
    await sleep(windowMs);
    const b = machineCpu();
    const share = b.total > a.total ? (b.busy - a.busy) / (b.total - a.total) : 0;
    const ms = performance.now() - start;
    if (share < busyBelow) return { ms, quiet: true };
    if (ms >= maxMs) return { ms, quiet: false };
  }
}
