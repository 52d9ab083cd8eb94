// Pid files and liveness checks that are safe against pid reuse.
import { readFile } from "node:fs/promises";

/** Reads a pid file; undefined when it is missing or does not hold a positive integer. */
export async function readPidFile(path: string): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch {
    return undefined;
  }
  const pid = Number.parseInt(text.trim(), 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Process names of the monitors berth runs: conmon, or its own berth-monitor (runtime.monitor). */
export const MONITOR_NAMES: readonly string[] = ["conmon", "berth-monitor"];

/** True when `pid` is alive and is a monitor process, conmon or berth-monitor (guards against pid reuse after a reboot-free restart). */
export async function isConmonAlive(pid: number): Promise<boolean> {
  if (!isAlive(pid)) return false;
  try {
    const comm = (await readFile(`/proc/${pid}/comm`, "utf8")).trim();
    if (!MONITOR_NAMES.includes(comm)) return false;
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    // state field after "(comm) ": Z = zombie, which is not a live monitor
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z";
  } catch {
    return false;
  }
}

let cachedBootId: string | undefined;
/** This boot's id: pids and process start times only identify a process within one boot. */
export async function bootId(): Promise<string> {
  cachedBootId ??= (await readFile("/proc/sys/kernel/random/boot_id", "utf8").catch(() => "")).trim();
  return cachedBootId;
}

/**
 * A process's start time (field 22 of /proc/PID/stat, in clock ticks since boot), or undefined
 * when it is gone or a zombie. With the pid and boot id it identifies a process across pid reuse.
 */
export async function processStartTime(pid: number): Promise<string | undefined> {
  if (!pid) return undefined;
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (rest[0] === "Z" || rest[0] === "X") return undefined;
    return rest[19];
  } catch {
    return undefined;
  }
}
