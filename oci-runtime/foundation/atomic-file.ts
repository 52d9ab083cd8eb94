// Crash-safe file writes, shared by every layer: temp file in the same directory
// (created if missing), fsync, rename, fsync the directory. A reader sees the old
// content or the new, never half; a failed write leaves no temp file behind.
import { uniqueSuffix } from "./unique.ts";
import { mkdir, open, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/** Writes `data` to `path` atomically; a new file gets `mode` (default 0600). */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.${basename(path)}.${uniqueSuffix()}.tmp`);
  const fh = await open(tmp, "wx", mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(dir);
}

/** Writes `value` as indented JSON with a trailing newline, atomically. */
export const writeJsonAtomic = (path: string, value: unknown, mode = 0o600): Promise<void> =>
  writeFileAtomic(path, JSON.stringify(value, null, 1) + "\n", mode);

/** Makes a directory's entries (a rename, a new file) durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const dh = await open(dir, "r");
  try { await dh.sync(); } finally { await dh.close(); }
}
