// /proc/<pid>/mountinfo parsing and lookups: the one mountinfo parser, used by the
// OCI spec builder, cgroup detection and stats, the network (netns, pod files) and
// the snapshotter.
import { closeSync, openSync, readSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { internal } from "./errdefs.ts";

export interface MountInfo {
  id: number;
  parent: number;
  root: string;
  mountPoint: string;
  options: string[];
  /** Optional fields, e.g. ["shared:1", "master:2"]. */
  optional: string[];
  fsType: string;
  source: string;
  superOptions: string[];
}

/** Decodes the octal escapes (\040 for space, \011, \012, \134) the kernel uses in mountinfo. */
const unescapeMountPath = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

export function parseMountInfo(text: string): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const f = line.split(" ");
    const sep = f.indexOf("-", 6);
    if (sep < 0 || f.length < sep + 3) continue;
    out.push({
      id: Number(f[0]),
      parent: Number(f[1]),
      root: unescapeMountPath(f[3]!),
      mountPoint: unescapeMountPath(f[4]!),
      options: f[5]!.split(","),
      optional: f.slice(6, sep).filter(Boolean),
      fsType: f[sep + 1]!,
      source: unescapeMountPath(f[sep + 2]!),
      superOptions: (f[sep + 3] ?? "").split(","),
    });
  }
  return out;
}

export async function readMountInfo(pid: number | "self" = "self"): Promise<MountInfo[]> {
  return parseMountInfo(await readFile(`/proc/${pid}/mountinfo`, "utf8"));
}

/** The mount that contains `path` (the last mounted among those with the longest matching mount point). */
export function mountOf(mounts: MountInfo[], path: string): MountInfo | undefined {
  let best: MountInfo | undefined;
  for (const m of mounts) {
    const mp = m.mountPoint;
    const inside = path === mp || mp === "/" || path.startsWith(mp.endsWith("/") ? mp : `${mp}/`);
    if (!inside) continue;
    if (!best || mp.length >= best.mountPoint.length) best = m;
  }
  return best;
}

/** The topmost (last mounted) mount at exactly `path` (absolute and canonical), if any. */
export function mountAt(mounts: MountInfo[], path: string): MountInfo | undefined {
  for (let i = mounts.length - 1; i >= 0; i--) if (mounts[i]!.mountPoint === path) return mounts[i];
  return undefined;
}

/** The most bytes of a mountinfo file findMount reads (about 100,000 mounts). */
export const MAX_MOUNTINFO_BYTES = 32 << 20;

/** Encodes a path the way the kernel writes mount points in mountinfo (space, tab, newline, backslash as octal). */
export const escapeMountPath = (s: string) => s.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, "0")}`);

/** One buffer, reused by every findMount (reads are synchronous, so never shared by two at once). */
let scratch = Buffer.allocUnsafe(64 << 10);

/** The whole of a mountinfo file into `scratch` (grown as needed, at most MAX_MOUNTINFO_BYTES); returns its length. */
function readIntoScratch(file: string): number {
  const fd = openSync(file, "r");
  try {
    let n = 0;
    for (;;) {
      if (n === scratch.length) {
        if (scratch.length >= MAX_MOUNTINFO_BYTES) throw internal(`${file} is larger than the limit of ${MAX_MOUNTINFO_BYTES} bytes`);
        const bigger = Buffer.allocUnsafe(Math.min(scratch.length * 2, MAX_MOUNTINFO_BYTES));
        scratch.copy(bigger, 0, 0, n);
        scratch = bigger;
      }
      const r = readSync(fd, scratch, n, scratch.length - n, null);
      if (r === 0) return n;
      n += r;
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * The topmost mount at exactly `path` in this process's mount table (or `file`), if any. Called
 * for every pod's /dev/shm and network namespace: with hundreds of pods the table has thousands
 * of lines, so it is read into one reused buffer and only the lines that contain the path are
 * parsed (parsing the whole table on every call made berthd's memory grow by about 60 MB while
 * 230 pods were removed).
 */
export async function findMount(path: string, file = "/proc/self/mountinfo"): Promise<MountInfo | undefined> {
  let found: MountInfo | undefined;
  // Later lines are mounted later: the last is the topmost.
  for (const m of linesContaining(` ${escapeMountPath(path)} `, file)) if (m.mountPoint === path) found = m;
  return found;
}

/**
 * Mount points at `dir` or below it in this process's mount table (or `file`), in table order; like
 * findMount, only the lines that contain `dir` are parsed (removing each pod looks for mounts
 * under its directories).
 */
export async function mountPointsUnder(dir: string, file = "/proc/self/mountinfo"): Promise<string[]> {
  const prefix = dir.replace(/\/+$/, "");
  const out: string[] = [];
  for (const m of linesContaining(` ${escapeMountPath(prefix)}`, file)) {
    if (m.mountPoint === prefix || m.mountPoint.startsWith(`${prefix}/`)) out.push(m.mountPoint);
  }
  return out;
}

/** Each line of `file` that contains `text` (as mountinfo writes it), parsed, in order. */
function linesContaining(text: string, file: string): MountInfo[] {
  const len = readIntoScratch(file);
  const needle = Buffer.from(text);
  const out: MountInfo[] = [];
  for (let at = scratch.indexOf(needle, 0); at >= 0 && at < len; at = scratch.indexOf(needle, at + 1)) {
    const start = scratch.lastIndexOf(0x0a, at) + 1;
    let end = scratch.indexOf(0x0a, at);
    if (end < 0 || end > len) end = len;
    out.push(...parseMountInfo(scratch.toString("utf8", start, end)));
    at = end;
  }
  return out;
}

export const isShared = (m: MountInfo) => m.optional.some((o) => o.startsWith("shared:"));
export const isSlave = (m: MountInfo) => m.optional.some((o) => o.startsWith("master:"));
