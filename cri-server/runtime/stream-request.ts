// Validation shared by the Exec and Attach RPCs (CRI api.proto: at least one of
// stdin, stdout and stderr; with tty, stderr must be false).
import { invalidArgument } from "../../oci-runtime/foundation/errdefs.ts";

export function checkStreams(rpc: string, r: { stdin: boolean; stdout: boolean; stderr: boolean; tty: boolean }): void {
  if (!r.stdin && !r.stdout && !r.stderr) throw invalidArgument(`${rpc}: one of stdin, stdout and stderr must be true`);
  if (r.tty && r.stderr) throw invalidArgument(`${rpc}: tty and stderr cannot both be true (a terminal merges stderr into stdout)`);
}
