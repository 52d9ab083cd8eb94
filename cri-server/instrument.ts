// The one wrapper around every RPC: request id, structured log line (id, method,
// duration, code), an OpenTelemetry span, metrics, and domain errors -> gRPC status.
// Handlers never choose status codes; anything unexpected becomes INTERNAL with a
// generic message (the real error is logged, never sent).
import { BerthError, Code, codeName } from "../oci-runtime/foundation/errdefs.ts";
import type { Logger } from "../oci-runtime/foundation/log.ts";
import { SPAN_STATUS_ERROR, startSpan } from "./tracing.ts";

export interface RpcObserver {
  (method: string, code: number, seconds: number): void;
}

export interface Outcome<T> { value?: T; error?: { code: number; message: string } }

const shortName = (method: string) => method.slice(method.lastIndexOf("/") + 1);

/** Status messages travel in an HTTP/2 trailer: keep them short, whatever a request echoed into them. */
export const MAX_MESSAGE = 2048;
export function clip(message: string): string {
  return message.length <= MAX_MESSAGE ? message : `${message.slice(0, MAX_MESSAGE - 40)}… (${message.length - MAX_MESSAGE + 40} more characters)`;
}

/**
 * A log correlation id per call: 12 hex digits, a prefix per berthd and a counter. It was
 * randomBytes(6) per call, a getrandom(2) each (2% of berthd's CPU while ListContainers was called
 * in a loop). The prefix tells apart the lines of berthds that follow one another in a log: it
 * mixes the pid and the start time, and needs no node:crypto (which berthd does not load to run
 * pods, see foundation/builtins.ts).
 */
const REQUEST_ID_PREFIX = ((process.pid ^ Date.now()) & 0xffff).toString(16).padStart(4, "0");
let requestCounter = 0;
export const newRequestId = () => {
  requestCounter = (requestCounter + 1) % 0x100000000;
  return REQUEST_ID_PREFIX + requestCounter.toString(16).padStart(8, "0");
};

/** The RPCs kubelet polls, logged at debug level when they succeed. */
const QUIET = /^(List|Status$|Version$|ImageFsInfo|ContainerStatus|PodSandboxStatus|ImageStatus|.*Stats$|ListMetric)/;

/** Runs `fn` under the wrapper and returns either its value or a status to send. */
export async function instrument<T>(
  log: Logger,
  method: string,
  id: string,
  fn: () => Promise<T>,
  observe?: RpcObserver,
): Promise<Outcome<T>> {
  const start = process.hrtime.bigint();
  const name = shortName(method);
  return startSpan(`cri.${name}`, { "rpc.system": "grpc", "rpc.method": name, "berth.request_id": id }, async (span) => {
    let outcome: Outcome<T>;
    try {
      outcome = { value: await fn() };
    } catch (err) {
      const be = BerthError.from(err);
      outcome = { error: { code: be.code, message: clip(be.code === Code.INTERNAL && be.message === "internal error" ? `internal error (request ${id})` : be.message) } };
      if (be.code === Code.INTERNAL) log.error("rpc internal error", { id, method: name, error: err, stack: err instanceof Error ? err.stack : undefined });
      span.recordException(be);
      span.setStatus({ code: SPAN_STATUS_ERROR, message: codeName(be.code) });
    }
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const code = outcome.error?.code ?? Code.OK;
    span.setAttribute("rpc.grpc.status_code", code);
    span.end();
    // Polling RPCs at debug level so kubelet's steady traffic doesn't flood the log; their line's
    // fields are not even built unless debug lines are written.
    const quiet = code === Code.OK && QUIET.test(name);
    if (log.enabled(quiet ? "debug" : "info")) {
      const fields: Record<string, unknown> = { id, method: name, duration_ms: Math.round(seconds * 1e6) / 1e3, code: codeName(code) };
      if (outcome.error) fields["error"] = outcome.error.message;
      if (quiet) log.debug("rpc", fields); else log.info("rpc", fields);
    }
    observe?.(name, code, seconds);
    return outcome;
  });
}
