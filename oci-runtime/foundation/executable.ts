// Finding a program to run: berth's one PATH lookup (the daemon's runtime and conmon
// checks, CRIU for CheckpointContainer, the critest runner's tools).
import { accessSync, constants, statSync } from "node:fs";
import { delimiter, join } from "node:path";

/** PATH when the environment has none (what execvp falls back to, with the sbin dirs first). */
export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Whether a program can be run: its path, or why not. */
export interface BinaryStatus { ok: boolean; path: string; problem?: string }

/**
 * Looks `name` up like execvp: `name` itself when it contains a "/", otherwise the first
 * `<dir>/<name>` of `path`'s directories (empty entries skipped) that is an executable
 * regular file; when there is none, why not.
 */
export function binaryStatus(name: string, path = process.env["PATH"] ?? DEFAULT_PATH): BinaryStatus {
  if (name === "") return { ok: false, path: name, problem: "is empty" };
  const candidates = name.includes("/") ? [name] : path.split(delimiter).filter(Boolean).map((d) => join(d, name));
  let problem = name.includes("/") ? "does not exist" : `is not on PATH (${path})`;
  for (const c of candidates) {
    try {
      if (!statSync(c).isFile()) { problem = "is not a regular file"; continue; }
      accessSync(c, constants.X_OK);
      return { ok: true, path: c };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EACCES") problem = "is not executable";
      else if (code !== "ENOENT") problem = `cannot be checked (${code})`;
    }
  }
  return { ok: false, path: name, problem };
}

/** The path of the executable regular file `name` as binaryStatus finds it; undefined when there is none. */
export function findExecutable(name: string, path = process.env["PATH"] ?? DEFAULT_PATH): string | undefined {
  const st = binaryStatus(name, path);
  return st.ok ? st.path : undefined;
}
