// Turns an OCI runtime's failure output into a BerthError that carries the runtime's own message.
import { alreadyExists, failedPrecondition, internal, notFound, type BerthError } from "../foundation/errdefs.ts";

/** The last error-level `msg` in a `--log-format json` log, or undefined. */
export function lastLogError(jsonLog: string): string | undefined {
  let found: string | undefined;
  for (const line of jsonLog.split("\n")) {
    if (!line.trim()) continue;
    try {
      const rec = JSON.parse(line) as { level?: string; msg?: string };
      if (typeof rec.msg === "string" && (rec.level === "error" || rec.level === "fatal")) found = rec.msg;
    } catch {
      // not JSON: some runtimes write plain lines before the logger is set up
    }
  }
  return found;
}

/** The most useful message: the runtime's json log, else its stderr, else its exit status. */
export function runtimeMessage(jsonLog: string, stderr: string, status: string): string {
  const fromLog = lastLogError(jsonLog);
  if (fromLog) return fromLog.trim();
  const fromStderr = stderr.trim().split("\n").filter(Boolean).pop();
  if (fromStderr) {
    const asLog = lastLogError(fromStderr);
    return (asLog ?? fromStderr).trim();
  }
  return status;
}

const NOT_FOUND = /container does not exist|does not exist|no such container|container .* not found|not found in state/i;
const NOT_RUNNING = /not running|container .* is not running|cannot (?:kill|pause|resume)|is (?:already )?stopped|process already finished|container is paused|not paused/i;
const EXISTS = /already exists|container with (?:given )?id exists|exists already/i;

/** Classifies a runtime failure. `what` names the operation and object, e.g. `runc start container abc`. */
export function runtimeError(what: string, message: string, cause?: unknown): BerthError {
  const text = `${what}: ${message}`;
  // order matters: "executable file not found" is an internal failure, not a missing container
  if (/executable file not found|no such file or directory/i.test(message) && !/container does not exist/i.test(message)) {
    return internal(text, cause);
  }
  if (NOT_FOUND.test(message)) return notFound(text, cause);
  if (EXISTS.test(message)) return alreadyExists(text, cause);
  if (NOT_RUNNING.test(message)) return failedPrecondition(text, cause);
  return internal(text, cause);
}
