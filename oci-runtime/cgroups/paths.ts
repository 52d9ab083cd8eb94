// cgroupfs-driver paths and cgroup directory housekeeping.
import { mkdir, readdir, readFile, rmdir, writeFile } from "node:fs/promises";
import { posix } from "node:path";
import { invalidArgument } from "../foundation/errdefs.ts";
import type { CgroupLayout } from "./mode.ts";

/** `<parent>/<id>` for the cgroupfs driver; parent from CRI cgroup_parent (e.g. /kubepods/besteffort/podUID). */
export function containerCgroupsPath(parent: string | undefined, id: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(id)) throw invalidArgument(`invalid cgroup name "${id}"`);
  const p = parent?.trim() || "/berth";
  if (p.endsWith(".slice") || p.includes(":")) throw invalidArgument(`cgroup parent "${parent}" is a systemd slice; berth uses the cgroupfs driver`);
  if (p.split("/").includes("..")) throw invalidArgument(`cgroup parent "${parent}" contains ".."`);
  return posix.join(posix.normalize(p.startsWith("/") ? p : `/${p}`), id);
}

/** Every directory that holds `path` on this host: one per v1 hierarchy plus the v2 tree. */
export function cgroupDirs(layout: CgroupLayout, path: string): string[] {
  const rel = posix.normalize(`/${path}`);
  if (rel === "/") return [];
  const dirs = layout.v1.map((h) => posix.join(h.mountPoint, rel));
  if (layout.v2) dirs.push(posix.join(layout.v2, rel));
  return dirs;
}

/** Removes a (now empty) cgroup everywhere; missing dirs are fine, busy ones are retried briefly. Returns dirs left behind. */
export async function removeCgroup(layout: CgroupLayout, path: string, opts: { retries?: number } = {}): Promise<string[]> {
  const left: string[] = [];
  for (const dir of cgroupDirs(layout, path)) {
    if (!(await removeTree(dir, opts.retries ?? 10))) left.push(dir);
  }
  return left;
}

/** rmdir children first (runc may leave sub-cgroups), then the dir itself. */
async function removeTree(dir: string, retries: number): Promise<boolean> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "ENOENT";
  }
  for (const e of entries) if (e.isDirectory()) await removeTree(posix.join(dir, e.name), retries);
  for (let i = 0; ; i++) {
    try {
      await rmdir(dir);
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return true;
      if (code !== "EBUSY" || i >= retries) return false;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** Pids in a cgroup (from the v2 tree or the first v1 hierarchy that has the cgroup). */
export async function cgroupPids(layout: CgroupLayout, path: string): Promise<number[]> {
  const candidates = [
    ...(layout.mode === "v2" && layout.v2 ? [layout.v2] : []),
    ...layout.v1.filter((h) => h.controllers.includes("pids") || h.controllers.includes("memory")).map((h) => h.mountPoint),
    ...layout.v1.map((h) => h.mountPoint),
    ...(layout.v2 ? [layout.v2] : []),
  ];
  for (const root of candidates) {
    try {
      const text = await readFile(posix.join(root, posix.normalize(`/${path}`), "cgroup.procs"), "utf8");
      return text.split("\n").filter(Boolean).map(Number);
    } catch {
      // try the next hierarchy
    }
  }
  return [];
}

/**
 * Moves a process into `path` in every hierarchy (creating it). Used to take conmon out of berthd's
 * cgroup so that stopping berthd's service cgroup does not kill the monitors.
 */
export async function addToCgroup(layout: CgroupLayout, path: string, pid: number): Promise<void> {
  for (const dir of cgroupDirs(layout, path)) {
    await mkdir(dir, { recursive: true });
    if (layout.v1.some((h) => dir.startsWith(`${h.mountPoint}/`) && h.controllers.includes("cpuset"))) {
      // a new v1 cpuset cgroup starts empty: inherit the parent's cpus and mems first
      for (const f of ["cpuset.cpus", "cpuset.mems"]) {
        const cur = (await readFile(posix.join(dir, f), "utf8").catch(() => "")).trim();
        if (!cur) await writeFile(posix.join(dir, f), (await readFile(posix.join(dir, "..", f), "utf8")).trim());
      }
    }
    await writeFile(posix.join(dir, "cgroup.procs"), String(pid));
  }
}
