// Bytes and inodes used under a directory (hard links counted once, mounts not crossed).
import { lstat, readdir } from "node:fs/promises";
import path from "node:path";

export async function diskUsage(root: string): Promise<{ bytes: number; inodes: number }> {
  const seen = new Set<string>();
  let bytes = 0;
  let inodes = 0;
  const top = await lstat(root).catch(() => undefined);
  if (!top) return { bytes: 0, inodes: 0 };
  const walk = async (dir: string): Promise<void> => {
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const n of names) {
      const p = path.join(dir, n);
      const st = await lstat(p).catch(() => undefined);
      if (!st) continue;
      if (st.dev !== top.dev) continue;
      const id = `${st.ino}`;
      if (st.nlink > 1) { if (seen.has(id)) continue; seen.add(id); }
      inodes++;
      bytes += st.blocks * 512;
      if (st.isDirectory()) await walk(p);
    }
  };
  inodes++;
  bytes += top.blocks * 512;
  if (top.isDirectory()) await walk(root);
  return { bytes, inodes };
}
