// /proc/<pid>/mountinfo parsing and lookups: the one mountinfo parser, used by the
// OCI spec builder, cgroup detection and stats, the network (netns, pod files) and
// the snapshotter.
import { readFile } from "node:fs/promises";

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

/** The topmost mount at exactly `path` in this process's mount table, if any. */
export async function findMount(path: string): Promise<MountInfo | undefined> {
  return mountAt(await readMountInfo(), path);
}

export const isShared = (m: MountInfo) => m.optional.some((o) => o.startsWith("shared:"));
export const isSlave = (m: MountInfo) => m.optional.some((o) => o.startsWith("master:"));
