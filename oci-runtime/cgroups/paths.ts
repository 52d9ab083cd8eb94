// cgroupfs-driver paths and cgroup directory housekeeping.
import { readdir, readFile, rmdir } from "node:fs/promises";
import { posix } from "node:path";
import { invalidArgument } from "../foundation/errdefs.ts";
import { cgroupDirIn, type CgroupLayout } from "./mode.ts";

/** The parent cgroup of pods that name none. */
export const DEFAULT_CGROUP_PARENT = "/berth";
/** Bounds on a cgroup parent: total length, one path component (the kernel's NAME_MAX), depth. */
export const MAX_CGROUP_PARENT_LENGTH = 4096;
export const MAX_CGROUP_COMPONENT_LENGTH = 255;
export const MAX_CGROUP_PARENT_DEPTH = 64;

const LEAF_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/**
 * CRI cgroup_parent as the absolute cgroupfs path every berth cgroup of the pod lives under
 * ("" is /berth). The one place a parent is checked: ".", "..", NUL and control characters,
 * systemd slice names (berth is a cgroupfs driver), the root cgroup itself and oversized input
 * are refused with INVALID_ARGUMENT naming `field` and the value; "//" and a trailing "/" are folded.
 */
export function cgroupParentPath(parent: string | undefined, field = "config.linux.cgroup_parent"): string {
  const raw = parent ?? "";
  if (raw === "") return DEFAULT_CGROUP_PARENT;
  const shown = JSON.stringify(raw.length > 120 ? `${raw.slice(0, 120)}...` : raw);
  if (raw.length > MAX_CGROUP_PARENT_LENGTH) throw invalidArgument(`${field} is ${raw.length} characters long, more than the limit of ${MAX_CGROUP_PARENT_LENGTH}`);
  if (/[\x00-\x1f\x7f]/.test(raw)) throw invalidArgument(`${field} ${shown} contains NUL or a control character`);
  const parts = raw.split("/").filter((p) => p !== "");
  if (parts.some((p) => p === "." || p === "..")) throw invalidArgument(`${field} ${shown} contains "." or ".." (it would leave the cgroup tree it names)`);
  if (parts.length === 0) throw invalidArgument(`${field} ${shown} names the root cgroup; give a cgroup below it`);
  if (parts.length > MAX_CGROUP_PARENT_DEPTH) throw invalidArgument(`${field} ${shown} is ${parts.length} levels deep, more than the limit of ${MAX_CGROUP_PARENT_DEPTH}`);
  const long = parts.find((p) => p.length > MAX_CGROUP_COMPONENT_LENGTH);
  if (long) throw invalidArgument(`${field} ${shown} has a component of ${long.length} characters, more than the limit of ${MAX_CGROUP_COMPONENT_LENGTH}`);
  if (raw.includes(":") || parts[parts.length - 1]!.endsWith(".slice")) throw invalidArgument(`${field} ${shown} is a systemd slice; berth uses the cgroupfs driver`);
  return `/${parts.join("/")}`;
}

/** `<cgroup parent>/<leaf>` (leaf: a plain name, e.g. "berth-<id>"), the parent checked by cgroupParentPath. */
export function cgroupPathUnder(parent: string | undefined, leaf: string, field?: string): string {
  if (!LEAF_RE.test(leaf) || leaf.length > MAX_CGROUP_COMPONENT_LENGTH) throw invalidArgument(`invalid cgroup name ${JSON.stringify(leaf.slice(0, 300))}`);
  return `${cgroupParentPath(parent, field)}/${leaf}`;
}

/**
 * The cgroupfs path of a container or of a pod's infra process: `<cgroup parent>/berth-<id>`.
 * Every spec berth writes takes its linux.cgroupsPath from here.
 */
export function containerCgroupsPath(parent: string | undefined, id: string, field?: string): string {
  return cgroupPathUnder(parent, `berth-${id}`, field);
}

/** Every directory that holds `path` on this host: one per v1 hierarchy plus the v2 tree. */
export function cgroupDirs(layout: CgroupLayout, path: string): string[] {
  const rel = posix.normalize(`/${path}`);
  if (rel === "/") return [];
  const dirs = layout.v1.map((h) => cgroupDirIn(h.mountPoint, h.root, rel));
  if (layout.v2) dirs.push(cgroupDirIn(layout.v2, layout.v2Root ?? "/", rel));
  return dirs.filter((d) => !layout.v1.some((h) => h.mountPoint === d) && d !== layout.v2);
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
  const v2 = layout.v2 ? [{ mountPoint: layout.v2, root: layout.v2Root }] : [];
  const candidates = [
    ...(layout.mode === "v2" ? v2 : []),
    ...layout.v1.filter((h) => h.controllers.includes("pids") || h.controllers.includes("memory")),
    ...layout.v1,
    ...v2,
  ];
  for (const h of candidates) {
    try {
      const text = await readFile(posix.join(cgroupDirIn(h.mountPoint, h.root, path), "cgroup.procs"), "utf8");
      return text.split("\n").filter(Boolean).map(Number);
    } catch {
      // try the next hierarchy
    }
  }
  return [];
}
