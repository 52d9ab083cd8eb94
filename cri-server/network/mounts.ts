// Reads the kernel's mount table (/proc/self/mountinfo) to answer
// "is this path a mount point, and of what type".

import { readFile } from "node:fs/promises";

export interface MountEntry {
  mountPoint: string;
  fsType: string;
  source: string;
  /** Optional fields such as "shared:12" or "master:3". */
  optional: string[];
}

/** Decodes the octal escapes (\040 for space, \011, \012, \134) the kernel uses in mountinfo. */
export const unescapeMountPath = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

export function parseMountInfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split("\n")) {
    if (!line) continue;
    const fields = line.split(" ");
    const sep = fields.indexOf("-", 6);
    if (sep < 0 || fields.length < sep + 3) continue;
    out.push({
      mountPoint: unescapeMountPath(fields[4]!),
      optional: fields.slice(6, sep),
      fsType: fields[sep + 1]!,
      source: unescapeMountPath(fields[sep + 2]!),
    });
  }
  return out;
}

export async function readMounts(mountInfoPath = "/proc/self/mountinfo"): Promise<MountEntry[]> {
  return parseMountInfo(await readFile(mountInfoPath, "utf8"));
}

/** The topmost mount at exactly `path` (which must be absolute and canonical), if any. */
export async function findMount(path: string): Promise<MountEntry | undefined> {
  const mounts = await readMounts();
  for (let i = mounts.length - 1; i >= 0; i--) if (mounts[i]!.mountPoint === path) return mounts[i];
  return undefined;
}
