// Port-forward over a SPDY session: each forwarded connection is a pair of
// client streams (data + error) sharing a `requestID`; the data stream is
// handed to the backend, a failure is written on the error stream, and the
// session stays up for further connections.

import type { Logger } from "../../oci-runtime/foundation/log.ts";
import type { StreamingBackend } from "./backend.ts";
import { PORT_HEADER, REQUEST_ID_HEADER, STREAM_TYPE_HEADER, StreamType } from "./protocol.ts";
import type { SpdyConnection, SpdyStream } from "./spdy/connection.ts";
import { errorMessage } from "./status.ts";
import type { PortForwardRequest } from "./tokens.ts";

export interface PortForwardSession {
  conn: SpdyConnection;
  backend: StreamingBackend;
  log: Logger;
  streamCreationTimeoutMs: number;
  request: PortForwardRequest;
}

export function parsePort(v: string): number | undefined {
  if (!/^[0-9]{1,5}$/.test(v)) return undefined;
  const n = Number(v);
  return n >= 1 && n <= 65535 ? n : undefined;
}

/**
 * Whether a client may forward `port`: only ports the PortForward RPC listed. kubelet sends no ports
 * for SPDY sessions (the client names them per stream), so an empty list leaves every port open.
 */
export function portAllowed(request: PortForwardRequest, port: number): boolean {
  return request.ports.length === 0 || request.ports.includes(port);
}

/** The pairing key: the requestID header, or (old clients) one derived from the stream id. */
export function pairKey(s: { id: number; header(name: string): string }): string {
  const id = s.header(REQUEST_ID_HEADER);
  if (id !== "") return id;
  return String(s.header(STREAM_TYPE_HEADER) === StreamType.data ? s.id - 2 : s.id);
}

export const forwardErrorMessage = (port: number, podSandboxId: string, reason: string) =>
  `error forwarding port ${port} to pod ${podSandboxId}, uid : ${reason}`;

export function servePortForwardSpdy(sess: PortForwardSession): Promise<void> {
  const { conn, backend, log, request } = sess;
  const abort = new AbortController();
  const pending = new Map<string, { data?: SpdyStream; error?: SpdyStream; timer: NodeJS.Timeout }>();

  const run = async (port: number, data: SpdyStream, error: SpdyStream) => {
    error.resume();
    try {
      await backend.portForward(request.podSandboxId, port, data, abort.signal);
    } catch (err) {
      if (abort.signal.aborted) return;
      const msg = forwardErrorMessage(port, request.podSandboxId, errorMessage(err));
      log.info("port-forward connection failed", { podSandboxId: request.podSandboxId, port, err });
      if (!error.destroyed) error.write(msg);
    } finally {
      if (!error.destroyed) error.end();
      if (!data.destroyed && !data.writableEnded) data.end();
      data.resume(); // discard what the client still sends, so the session never backs up
    }
  };

  conn.on("stream", (s: SpdyStream) => {
    const type = s.header(STREAM_TYPE_HEADER);
    if (type !== StreamType.data && type !== StreamType.error) { s.reset(); return; }
    const port = parsePort(s.header(PORT_HEADER));
    s.reply();
    if (port === undefined) {
      if (type === StreamType.error) s.end(`invalid port header ${JSON.stringify(s.header(PORT_HEADER).slice(0, 32))}`);
      else s.reset();
      return;
    }
    if (!portAllowed(request, port)) {
      log.info("port-forward to a port the request did not list refused", { podSandboxId: request.podSandboxId, port });
      if (type === StreamType.error) s.end(forwardErrorMessage(port, request.podSandboxId, `port ${port} is not in the PortForward request (ports ${request.ports.join(",")})`));
      else s.reset();
      return;
    }
    const key = pairKey(s);
    let p = pending.get(key);
    if (!p) {
      const timer = setTimeout(() => {
        const left = pending.get(key);
        pending.delete(key);
        left?.data?.reset();
        left?.error?.reset();
      }, sess.streamCreationTimeoutMs);
      p = { timer };
      pending.set(key, p);
    }
    if (p[type]) { s.reset(); return; }
    p[type] = s;
    if (p.data && p.error) {
      clearTimeout(p.timer);
      pending.delete(key);
      void run(port, p.data, p.error);
    }
  });

  return new Promise((resolve) => {
    conn.once("close", () => {
      abort.abort(new Error("client closed the port-forward session"));
      for (const p of pending.values()) clearTimeout(p.timer);
      pending.clear();
      resolve();
    });
  });
}
