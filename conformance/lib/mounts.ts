// Mount clean-up for test and benchmark harnesses: everything they mounted under a work
// directory goes before the directory is deleted (never reaching through a bind mount).
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { parseMountInfo } from "../../oci-runtime/foundation/mountinfo.ts";

/** Mount points below `dir` (and `dir` itself unless `strict`), deepest first. */
export function mountsUnder(dir: string, mountinfo = readFileSync("/proc/self/mountinfo", "utf8"), strict = false): string[] {
  return parseMountInfo(mountinfo).map((m) => m.mountPoint)
    .filter((p) => p.startsWith(`${dir}/`) || (!strict && p === dir))
    .sort((a, b) => b.length - a.length);
}

/** Lazily unmounts every mount point at or below `dir`, deepest first; returns what it unmounted. */
export function unmountUnder(dir: string): string[] {
  const done: string[] = [];
  for (let round = 0; round < 5; round++) {
    const points = mountsUnder(dir);
    if (!points.length) break;
    for (const p of points) if (spawnSync("umount", ["-l", p]).status === 0) done.push(p);
  }
  return done;
}
