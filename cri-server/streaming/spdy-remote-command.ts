// Exec and attach over a SPDY session: collect the client's streams by
// `streamType`, run the backend once all expected streams exist, and report
// the result on the error stream (v4: a metav1 Status; older: plain text).

import { finished } from "node:stream/promises";
import type { Logger } from "../../oci-runtime/foundation/log.ts";
import type { StreamIO, StreamingBackend } from "./backend.ts";
import { RemoteCommandProtocol, STREAM_TYPE_HEADER, StreamType } from "./protocol.ts";
import { resizeQueue } from "./resize-reader.ts";
import type { SpdyConnection, SpdyStream } from "./spdy/connection.ts";
import { runTarget, type RemoteCommandOutcome, type RemoteCommandTarget } from "./remote-command.ts";

export interface RemoteCommandSession {
  conn: SpdyConnection;
  protocol: string;
  backend: StreamingBackend;
  log: Logger;
  streamCreationTimeoutMs: number;
  target: RemoteCommandTarget;
}

/** Which stream types the client must open for these flags and protocol. */
export function expectedStreams(req: { tty: boolean; stdin: boolean; stdout: boolean; stderr: boolean }, protocol: string): Set<string> {
  const s = new Set<string>([StreamType.error]);
  if (req.stdin) s.add(StreamType.stdin);
  if (req.stdout) s.add(StreamType.stdout);
  if (req.stderr && !req.tty) s.add(StreamType.stderr);
  const resizing = protocol === RemoteCommandProtocol.V3 || protocol === RemoteCommandProtocol.V4;
  if (req.tty && resizing) s.add(StreamType.resize);
  return s;
}

function waitForStreams(conn: SpdyConnection, expected: Set<string>, timeoutMs: number): Promise<Map<string, SpdyStream>> {
  return new Promise((resolve, reject) => {
    const got = new Map<string, SpdyStream>();
    const cleanup = () => { clearTimeout(timer); conn.off("stream", onStream); conn.off("close", onClose); };
    const onStream = (s: SpdyStream) => {
      const type = s.header(STREAM_TYPE_HEADER);
      if (!expected.has(type) || got.has(type)) {
        s.reset();
        return;
      }
      s.reply();
      got.set(type, s);
      if (got.size === expected.size) { cleanup(); resolve(got); }
    };
    const onClose = () => { cleanup(); reject(new Error("spdy session closed before all streams were created")); };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out waiting for client streams (got ${[...got.keys()].join(",") || "none"}, want ${[...expected].join(",")})`));
    }, timeoutMs);
    conn.on("stream", onStream);
    conn.on("close", onClose);
  });
}

async function endAndWait(s: SpdyStream | undefined): Promise<void> {
  if (!s || s.destroyed) return;
  if (!s.writableEnded) s.end();
  await finished(s, { readable: false }).catch(() => undefined);
}

export async function serveRemoteCommandSpdy(sess: RemoteCommandSession): Promise<void> {
  const { conn, protocol, backend, log, target } = sess;
  const req = target.request;
  const streams = await waitForStreams(conn, expectedStreams(req, protocol), sess.streamCreationTimeoutMs);
  // Keep refusing streams nobody asked for.
  conn.on("stream", (s: SpdyStream) => s.reset());

  const abort = new AbortController();
  const onClose = () => abort.abort(new Error("client closed the streaming session"));
  conn.once("close", onClose);

  const errorStream = streams.get(StreamType.error)!;
  errorStream.resume(); // clients may write nothing; never let it back up
  const resizeStream = streams.get(StreamType.resize);
  const io: StreamIO = {
    stdin: streams.get(StreamType.stdin),
    stdout: streams.get(StreamType.stdout),
    stderr: streams.get(StreamType.stderr),
    resize: resizeStream ? resizeQueue(resizeStream) : undefined,
  };
  const v4 = protocol === RemoteCommandProtocol.V4;
  let outcome: RemoteCommandOutcome;
  try {
    outcome = await runTarget(backend, target, io, abort.signal, v4, log);
  } finally {
    conn.off("close", onClose);
  }
  if (outcome.aborted) return;
  const { payload } = outcome;
  if (conn.destroyed) return;
  await Promise.all([endAndWait(streams.get(StreamType.stdout)), endAndWait(streams.get(StreamType.stderr))]);
  if (payload !== undefined && !errorStream.destroyed) errorStream.write(payload);
  await endAndWait(errorStream);
  resizeStream?.destroy();
  await conn.close();
}
