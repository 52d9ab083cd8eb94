// The JSON records the image and lease stores keep, one file per object (written with writeJsonAtomic).
import { mkdir, readdir, readFile, rename, rm } from "node:fs/promises";
import path from "node:path";

/**
 * Reads a JSON record; an unreadable one (which atomic writes should make impossible) is moved
 * aside to `<file>.corrupt` so start-up continues, and undefined is returned.
 */
export async function readRecord<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(file, "utf8")) as T;
  } catch {
    await rename(file, `${file}.corrupt`).catch(() => {});
    return undefined;
  }
}

/**
 * Creates `dir` and reads every record whose file name passes `accept`, in directory order;
 * temp files left by interrupted writes (`*.tmp`) are removed.
 */
export async function loadRecords<T>(dir: string, accept: (name: string) => boolean): Promise<T[]> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const out: T[] = [];
  for (const n of await readdir(dir)) {
    const file = path.join(dir, n);
    if (n.endsWith(".tmp")) { await rm(file, { force: true }); continue; }
    if (!accept(n)) continue;
    const rec = await readRecord<T>(file);
    if (rec) out.push(rec);
  }
  return out;
}
