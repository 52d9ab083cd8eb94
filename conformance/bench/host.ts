// Host probes and cleanup for the benchmark: process RSS, finding helper processes by
// command line, unmounting what a daemon left under its directories, removing cgroups.
import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync, readlinkSync, rmdirSync, statSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** Resident set size of a process in bytes (0 when it is gone). */
export function rssBytes(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * `pids` and every process they started that is still alive, at any depth, from each thread's
 * /proc/PID/task/TID/children (berth's pull process and the unpack processes under it).
 */
export function withDescendants(pids: readonly number[]): number[] {
  const out: number[] = [];
  const seen = new Set<number>();
  const queue = [...pids];
  while (queue.length > 0 && out.length < 10_000) {
    const pid = queue.shift()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    out.push(pid);
    let tids: string[];
    try { tids = readdirSync(`/proc/${pid}/task`); } catch { continue; }
    for (const tid of tids) {
      try {
        for (const c of readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").trim().split(/\s+/)) if (c) queue.push(Number(c));
      } catch { /* the thread or the process ended */ }
    }
  }
  return out;
}

/** Memory of a process from /proc/PID/smaps_rollup, in bytes (zeros when it is gone). */
export interface MemUse { rss: number; pss: number; pssAnon: number }

export function parseSmapsRollup(text: string): MemUse {
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)\\s+kB`, "m").exec(text)?.[1] ?? 0) * 1024;
  return { rss: kb("Rss"), pss: kb("Pss"), pssAnon: kb("Pss_Anon") };
}

export function memUse(pid: number): MemUse {
  try {
    return parseSmapsRollup(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"));
  } catch {
    return { rss: 0, pss: 0, pssAnon: 0 };
  }
}

/** The children of `pid` whose name (/proc/PID/comm) is `comm`. */
export function childrenNamed(pid: number, comm: string): number[] {
  let kids: string;
  try { kids = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8"); } catch { return []; }
  return kids.trim().split(/\s+/).filter(Boolean).map(Number).filter((k) => {
    try { return readFileSync(`/proc/${k}/comm`, "utf8").trim() === comm; } catch { return false; }
  });
}

/**
 * Bytes of the memfds `pids` hold open (berthd's sealed runtime copies): shared memory that is in
 * no process's RSS while nothing runs from it, but is the daemon's all the same. Each memfd once.
 */
export function heldMemfdBytes(pids: readonly number[]): number {
  const seen = new Set<string>();
  let total = 0;
  for (const pid of pids) {
    let fds: string[];
    try { fds = readdirSync(`/proc/${pid}/fd`); } catch { continue; }
    for (const fd of fds) {
      try {
        if (!readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith("/memfd:")) continue;
        const st = statSync(`/proc/${pid}/fd/${fd}`);
        if (seen.has(`${st.dev}:${st.ino}`)) continue;
        seen.add(`${st.dev}:${st.ino}`);
        total += st.size;
      } catch { /* closed meanwhile */ }
    }
  }
  return total;
}

/** The sum of memUse over `pids`. */
export function memUseOf(pids: readonly number[]): MemUse {
  const total = { rss: 0, pss: 0, pssAnon: 0 };
  for (const pid of pids) {
    const m = memUse(pid);
    total.rss += m.rss;
    total.pss += m.pss;
    total.pssAnon += m.pssAnon;
  }
  return total;
}

/** Whether a /proc/PID/cgroup text puts the process under the cgroup `/<name>` in any hierarchy. */
export function cgroupUnder(text: string, name: string): boolean {
  return text.split("\n").some((line) => {
    const path = line.split(":").slice(2).join(":");
    return path === `/${name}` || path.startsWith(`/${name}/`);
  });
}

/** Pids whose argv[0] has basename `exe` and that run under the cgroup `/<cgroupName>`. */
export function findInCgroup(exe: string, cgroupName: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    const argv = cmdline(pid);
    if (!argv.length || basename(argv[0]!) !== exe) continue;
    try {
      if (cgroupUnder(readFileSync(`/proc/${pid}/cgroup`, "utf8"), cgroupName)) out.push(pid);
    } catch { /* gone */ }
  }
  return out;
}

/** Writes dirty pages back and drops the page cache, dentries and inodes (before a cold pull). */
export async function dropCaches(): Promise<void> {
  await run("sync", [], { timeout: 120_000 });
  writeFileSync("/proc/sys/vm/drop_caches", "3\n");
}

export function cmdline(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
  } catch {
    return [];
  }
}

/** Pids whose argv[0] has basename `exe` and whose command line contains `needle`. */
export function findProcesses(exe: string, needle: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    const argv = cmdline(pid);
    if (argv.length && basename(argv[0]!) === exe && argv.some((a) => a.includes(needle))) out.push(pid);
  }
  return out;
}

export function killAll(pids: number[], signal: NodeJS.Signals = "SIGKILL"): void {
  for (const pid of pids) {
    try { process.kill(pid, signal); } catch { /* already gone */ }
  }
}

export { mountsUnder, unmountUnder } from "../lib/mounts.ts";

/** Removes `/<name>` and its children in every cgroup hierarchy (v1 controllers and v2). */
export function removeCgroupTree(name: string): void {
  const rmTree = (dir: string) => {
    if (!existsSync(dir)) return;
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) rmTree(join(dir, e.name));
    try { rmdirSync(dir); } catch { /* busy or gone */ }
  };
  for (const h of readdirSync("/sys/fs/cgroup")) {
    const base = join("/sys/fs/cgroup", h);
    rmTree(join(base, name));
  }
  if (existsSync(join("/sys/fs/cgroup", "cgroup.controllers"))) rmTree(join("/sys/fs/cgroup", name));
}

/**
 * Deletes named network namespaces under /var/run/netns whose name starts with `prefix`, made at
 * or after `since` (ms), with an IPv4 address starting with `addressPrefix` (a pod of ours that
 * its runtime could not tear down).
 */
export async function deleteLeakedNetns(prefix: string, since: number, addressPrefix: string): Promise<string[]> {
  const dir = "/var/run/netns";
  if (!existsSync(dir)) return [];
  const deleted: string[] = [];
  for (const name of readdirSync(dir)) {
    if (!name.startsWith(prefix)) continue;
    try {
      if (statSync(join(dir, name)).mtimeMs < since) continue;
    } catch {
      continue;
    }
    const addrs = await run("ip", ["netns", "exec", name, "ip", "-o", "-4", "addr", "show"]).then((r) => r.stdout, () => "");
    if (!addrs.includes(` ${addressPrefix}`)) continue;
    await run("ip", ["netns", "delete", name]).then(() => deleted.push(name), () => {});
  }
  return deleted;
}

export const MB = 1024 * 1024;
