// Bytes and inodes used by a directory tree (a container's overlay upper
// dir), like `du`: allocated blocks, each hard-linked inode counted once.
// Walked with fs.promises, at most `concurrency` filesystem calls in flight.

import type { BigIntStats } from "node:fs";
import { lstat, readdir } from "node:fs/promises";
import { join } from "node:path";
import { notFound } from "../../oci-runtime/foundation/errdefs.ts";
import { limiter } from "./limiter.ts";

export interface DiskUsage {
  bytes: bigint;
  inodes: bigint;
}

const vanished = (err: unknown) => ["ENOENT", "ENOTDIR"].includes((err as NodeJS.ErrnoException).code ?? "");

export async function directoryUsage(root: string, opts: { concurrency?: number } = {}): Promise<DiskUsage> {
  const run = limiter(opts.concurrency ?? 8);
  const seen = new Set<string>();
  const usage: DiskUsage = { bytes: 0n, inodes: 0n };
  const count = (st: BigIntStats) => {
    if (!st.isDirectory() && st.nlink > 1n) {
      const key = `${st.dev}:${st.ino}`;
      if (seen.has(key)) return;
      seen.add(key);
    }
    usage.inodes += 1n;
    usage.bytes += st.blocks * 512n;
  };
  const statOrSkip = (p: string) => run(() => lstat(p, { bigint: true })).catch((err: unknown) => {
    if (vanished(err)) return undefined;
    throw err;
  });
  const walk = async (dir: string): Promise<void> => {
    let names: string[];
    try {
      names = await run(() => readdir(dir));
    } catch (err) {
      if (vanished(err)) return; // removed while walking
      throw err;
    }
    await Promise.all(names.map(async (name) => {
      const p = join(dir, name);
      const st = await statOrSkip(p);
      if (!st) return;
      count(st);
      if (st.isDirectory()) await walk(p);
    }));
  };

  const top = await statOrSkip(root);
  if (!top) throw notFound(`directory ${root} not found`);
  count(top);
  if (top.isDirectory()) await walk(root);
  return usage;
}
