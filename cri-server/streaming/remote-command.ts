// Runs the exec or attach behind a remote-command session (SPDY or WebSocket) and turns
// its outcome into the status payload for the client's error stream.
import type { Logger } from "../../oci-runtime/foundation/log.ts";
import type { StreamIO, StreamingBackend } from "./backend.ts";
import { errorMessage, execResultPayload } from "./status.ts";
import type { AttachRequest, ExecRequest } from "./tokens.ts";

export type RemoteCommandTarget = { kind: "exec"; request: ExecRequest } | { kind: "attach"; request: AttachRequest };

/** `aborted`: the client went away, nothing is to be sent; otherwise the payload (undefined: none). */
export type RemoteCommandOutcome = { aborted: true } | { aborted: false; payload: string | undefined };

/** Runs `target` through the backend; a failure is logged and reported to the client unless the session was aborted. */
export async function runTarget(
  backend: StreamingBackend, target: RemoteCommandTarget, io: StreamIO, signal: AbortSignal, v4: boolean, log: Logger,
): Promise<RemoteCommandOutcome> {
  try {
    if (target.kind === "exec") {
      const { exitCode } = await backend.exec(target.request, io, signal);
      return { aborted: false, payload: execResultPayload(v4, { exitCode }) };
    }
    await backend.attach(target.request, io, signal);
    return { aborted: false, payload: execResultPayload(v4, { exitCode: 0 }) };
  } catch (err) {
    if (signal.aborted) return { aborted: true };
    log.warn(`${target.kind} failed`, { containerId: target.request.containerId, err });
    return { aborted: false, payload: execResultPayload(v4, { error: errorMessage(err) }) };
  }
}
