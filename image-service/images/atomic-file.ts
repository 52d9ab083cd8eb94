// Crash-safe JSON files: write a temp file, fsync, rename, fsync the directory.
import { open, readFile, rename, rm } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { fsyncDir } from "../content/content-store.ts";

export async function writeJsonAtomic(file: string, value: unknown) {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(4).toString("hex")}.tmp`);
  const fh = await open(tmp, "wx", 0o600);
  try {
    await fh.writeFile(JSON.stringify(value, null, 1));
    await fh.sync();
  } catch (err) {
    await fh.close();
    await rm(tmp, { force: true });
    throw err;
  } 
  await fh.close();
  await rename(tmp, file);
  await fsyncDir(path.dirname(file));
}

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
