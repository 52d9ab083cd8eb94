// Bytes and inodes used by a directory tree, like `du -x`: allocated blocks, each
// hard-linked inode counted once, mounts below the root not crossed. Walked with
// fs.promises, at most `concurrency` filesystem calls in flight; entries removed while
// walking are skipped. berth's one walker: container writable layers (stats) and the
// image store (ImageFsInfo).

import type { BigIntStats } from "node:fs";
import { lstat, readdir } from "node:fs/promises";
import { join } from "node:path";
import { notFound } from "./errdefs.ts";
import { Semaphore } from "./semaphore.ts";

export interface DiskUsage {
  bytes: bigint;
  inodes: bigint;
}

const vanished = (err: unknown) => ["ENOENT", "ENOTDIR"].includes((err as NodeJS.ErrnoException).code ?? "");

export interface DiskUsageOptions {
  /** Filesystem calls in flight at most (default 8). */
  concurrency?: number;
  /** A missing root counts as empty instead of failing with NOT_FOUND. */
  missingOk?: boolean;
}

export async function directoryUsage(root: string, opts: DiskUsageOptions = {}): Promise<DiskUsage> {
  const sem = new Semaphore(opts.concurrency ?? 8);
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
  const statOrSkip = (p: string) => sem.run(() => lstat(p, { bigint: true })).catch((err: unknown) => {
    if (vanished(err)) return undefined;
    throw err;
  });

  const top = await statOrSkip(root);
  if (!top) {
    if (opts.missingOk) return usage;
    throw notFound(`directory ${root} not found`);
  }
  const walk = async (dir: string): Promise<void> => {
    let names: string[];
    try {
      names = await sem.run(() => readdir(dir));
    } catch (err) {
      if (vanished(err)) return; // removed while walking
      throw err;
    }
    await Promise.all(names.map(async (name) => {
      const p = join(dir, name);
      const st = await statOrSkip(p);
      if (!st || st.dev !== top.dev) return; // gone, or another filesystem mounted here
      count(st);
      if (st.isDirectory()) await walk(p);
    }));
  };
  count(top);
  if (top.isDirectory()) await walk(root);
  return usage;
}
