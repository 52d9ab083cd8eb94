// Reads the JSON records the image and lease stores keep (written with writeJsonAtomic).
import { readFile, rename } from "node:fs/promises";

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
