// Host probes and cleanup for the benchmark: process RSS, finding helper processes by
// command line, unmounting what a daemon left under its directories, removing cgroups.
import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmdirSync, statSync } from "node:fs";
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
