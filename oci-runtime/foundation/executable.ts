// Finding a program to run: berth's one PATH lookup (the daemon's runtime and conmon
// checks, CRIU for CheckpointContainer, the critest runner's tools).
import { accessSync, constants, statSync } from "node:fs";
import { delimiter, join } from "node:path";

/** PATH when the environment has none (what execvp falls back to, with the sbin dirs first). */
export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

function isExecutableFile(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/**
 * The path of the executable regular file `name`: `name` itself when it contains a "/",
 * otherwise the first `<dir>/<name>` of `path`'s directories (empty entries skipped);
 * undefined when there is none.
 */
export function findExecutable(name: string, path = process.env["PATH"] ?? DEFAULT_PATH): string | undefined {
  if (name === "") return undefined;
  if (name.includes("/")) return isExecutableFile(name) ? name : undefined;
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, name);
    if (isExecutableFile(p)) return p;
  }
  return undefined;
}
