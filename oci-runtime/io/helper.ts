// The berth-io helper binary (helper/berth-io.c): pseudo-terminals, conmon's
// SOCK_SEQPACKET attach socket and connecting inside a network namespace,
// none of which Node.js can do in-process. It is compiled at install time:
//   gcc -O2 -Wall -o /usr/local/libexec/berth/berth-io oci-runtime/io/helper/berth-io.c

import { execFile } from "node:child_process";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { nodeUtil } from "../foundation/builtins.ts";

export const IO_HELPER_SOURCE = fileURLToPath(new URL("./helper/berth-io.c", import.meta.url));
export const DEFAULT_IO_HELPER_PATH = "/usr/local/libexec/berth/berth-io";

/** Compiles the helper to `outPath` with the system C compiler. */
export async function buildIoHelper(outPath: string, cc = "gcc"): Promise<string> {
  await mkdir(path.dirname(outPath), { recursive: true, mode: 0o755 });
  await nodeUtil().promisify(execFile)(cc, ["-O2", "-Wall", "-o", outPath, IO_HELPER_SOURCE]);
  return outPath;
}
