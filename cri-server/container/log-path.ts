// The CRI log file of a container: the pod's log_directory (absolute, from kubelet) joined with
// the container's log_path (relative). Neither may climb out with ".." nor carry NUL, control
// characters or ":" (conmon's log-driver separator), so a request can only name a file under the directory kubelet chose for the pod.
import { posix } from "node:path";
import { invalidArgument } from "../../oci-runtime/foundation/errdefs.ts";

export const MAX_LOG_PATH = 4096;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;
const show = (v: string) => JSON.stringify(v.length > 120 ? `${v.slice(0, 120)}…` : v);

/** The host path of the container's log, or "" when the pod or the container names none. INVALID_ARGUMENT naming the field otherwise. */
export function containerLogPath(logDirectory: string, logPath: string): string {
  if (!logDirectory || !logPath) return "";
  for (const [field, v] of [["sandbox_config.log_directory", logDirectory], ["config.log_path", logPath]] as const) {
    if (v.length > MAX_LOG_PATH) throw invalidArgument(`${field} is longer than ${MAX_LOG_PATH} characters`);
    if (CONTROL.test(v)) throw invalidArgument(`${field} ${show(v)} must not contain NUL, newlines or control characters`);
    if (v.split("/").includes("..")) throw invalidArgument(`${field} ${show(v)} must not contain ".." components`);
    // conmon splits --log-path "k8s-file:PATH" at every ":", so PATH would end at the first one.
    if (v.includes(":")) throw invalidArgument(`${field} ${show(v)} must not contain ":" (conmon's --log-path would cut the path there)`);
  }
  if (!logDirectory.startsWith("/")) throw invalidArgument(`sandbox_config.log_directory ${show(logDirectory)} must be an absolute path`);
  if (logPath.startsWith("/")) throw invalidArgument(`config.log_path ${show(logPath)} must be relative to the pod's log_directory`);
  const full = posix.join(logDirectory, logPath);
  const dir = posix.normalize(logDirectory).replace(/\/+$/, "");
  if (!full.startsWith(`${dir}/`) || full === dir) throw invalidArgument(`config.log_path ${show(logPath)} must name a file under ${show(logDirectory)}`);
  return full;
}
