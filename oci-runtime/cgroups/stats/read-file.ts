import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { parseSingle } from "./parse.ts";

const absent = new Set(["ENOENT", "ENOTDIR", "ENODEV", "EOPNOTSUPP", "ENOTSUP", "EINVAL"]);
const isAbsent = (err: unknown) => absent.has((err as NodeJS.ErrnoException).code ?? "");

/** Contents of a cgroup file, or undefined when the file (or controller) is not there. */
export async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    if (isAbsent(err)) return undefined;
    throw err;
  }
}

/** Names in a directory, or [] when it is missing. */
export async function listOptional(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (isAbsent(err)) return [];
    throw err;
  }
}

/** A single-value cgroup file (`max` is unlimited: undefined), or undefined when it is not there. */
export async function readNumber(dir: string, file: string): Promise<bigint | undefined> {
  const text = await readOptional(join(dir, file));
  return text === undefined ? undefined : parseSingle(text);
}
