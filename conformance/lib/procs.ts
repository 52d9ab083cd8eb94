// Test helper: what /proc says about processes (for tests that check nothing is left behind).
import type { ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { readdir, readFile, rmdir } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";

/** Pids whose process group is `pgid` (field 5 of /proc/PID/stat, read after the command's closing parenthesis). */
export async function processGroupMembers(pgid: number): Promise<number[]> {
  const out: number[] = [];
  for (const d of await readdir("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    const stat = await readFile(`/proc/${d}/stat`, "utf8").catch(() => "");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(f[2]) === pgid) out.push(Number(d));
  }
  return out;
}

/** A process's command name and the fields after it in /proc/PID/stat (f[0] state, f[1] ppid, f[2] pgid); undefined once it is gone. */
function statOf(pid: number | string): { comm: string; f: string[] } | undefined {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, "utf8");
    return { comm: st.slice(st.indexOf("(") + 1, st.lastIndexOf(")")), f: st.slice(st.lastIndexOf(")") + 2).split(" ") };
  } catch { return undefined; }
}

/**
 * Processes whose parent is one of `parents`, and named `comm` when given, with their state
 * letter ("Z": a zombie, not yet reaped).
 */
export function childProcesses(parents: readonly number[], comm?: string): { pid: number; state: string }[] {
  const out: { pid: number; state: string }[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    const s = statOf(d);
    if (s && parents.includes(Number(s.f[1])) && (comm === undefined || s.comm === comm)) out.push({ pid: Number(d), state: s.f[0]! });
  }
  return out;
}

/** State letter of a process ("Z": a zombie), or "gone". */
/** A process's resident set in MB (VmRSS). */
export function rssMB(pid: number): number {
  return Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;
}

export function processState(pid: number): string {
  return statOf(pid)?.f[0] ?? "gone";
}

/** Exited, by a return or by a signal (exitCode stays null after a signal). */
export function hasExited(proc: ChildProcess): boolean {
  return proc.exitCode !== null || proc.signalCode !== null;
}

/** True once proc has exited (at once if it already had), false if it still runs after ms. */
export function exitWithin(proc: ChildProcess, ms: number): Promise<boolean> {
  if (hasExited(proc)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => { proc.off("exit", done); resolve(false); }, ms);
    const done = () => { clearTimeout(t); resolve(true); };
    proc.once("exit", done);
  });
}

/** [exit code, signal] of proc, once it has exited (at once if it already had). */
export function exitStatus(proc: ChildProcess): Promise<[number | null, string | null]> {
  if (hasExited(proc)) return Promise.resolve([proc.exitCode, proc.signalCode]);
  return new Promise((resolve) => proc.once("exit", (code, sig) => resolve([code, sig])));
}

/** SIGKILLs a child that is still running and waits for its exit (an after() hook's cleanup). */
export async function killAndWait(p: ChildProcess | undefined): Promise<void> {
  if (!p || hasExited(p)) return;
  const exited = new Promise((r) => p.once("exit", r));
  p.kill("SIGKILL");
  await exited;
}

/**
 * Removes test cgroup directories (an after() hook's cleanup): a cgroup whose last process just
 * exited may still be busy for a moment, so each is retried for up to 5 s; a missing one is fine.
 */
export async function removeCgroupDirs(dirs: readonly string[]): Promise<void> {
  for (const d of dirs) {
    for (let i = 0; i < 50; i++) {
      try { await rmdir(d); break; } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") break;
        await sleep(100);
      }
    }
  }
}
