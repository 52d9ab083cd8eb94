// A SPDY/3.1 client for tests and the conformance suite: the HTTP/1.1
// upgrade handshake with protocol negotiation, plus helpers that open the
// Kubernetes exec/attach and port-forward streams.

import http from "node:http";
import https from "node:https";
import type { Socket } from "node:net";
import type { Readable } from "node:stream";
import { PORT_HEADER, REQUEST_ID_HEADER, STREAM_PROTOCOL_HEADER, STREAM_TYPE_HEADER, StreamType } from "../../cri-server/streaming/protocol.ts";
import { SpdyConnection, type SpdyStream } from "../../cri-server/streaming/spdy/connection.ts";

export class UpgradeRefusedError extends Error {
  readonly statusCode: number;
  readonly body: string;
  readonly headers: http.IncomingHttpHeaders;
  constructor(statusCode: number, body: string, headers: http.IncomingHttpHeaders) {
    super(`upgrade refused with http ${statusCode}: ${body.trim()}`);
    this.name = "UpgradeRefusedError";
    this.statusCode = statusCode;
    this.body = body;
    this.headers = headers;
  }
}

export interface DialOptions {
  /** Offered X-Stream-Protocol-Version values, preferred first. */
  protocols: string[];
  method?: "GET" | "POST";
  /** TLS: trust this CA (PEM) or skip verification. */
  ca?: string | Buffer;
  rejectUnauthorized?: boolean;
  headers?: Record<string, string>;
}

export interface SpdyClientSession { conn: SpdyConnection; protocol: string }

/** Upgrades `url` to SPDY/3.1; rejects with UpgradeRefusedError on any non-101 answer. */
export function dialSpdy(url: string, opts: DialOptions): Promise<SpdyClientSession> {
  const u = new URL(url);
  const mod = u.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(u, {
      method: opts.method ?? "POST",
      headers: { ...opts.headers, Connection: "Upgrade", Upgrade: "SPDY/3.1", [STREAM_PROTOCOL_HEADER]: opts.protocols },
      ...(u.protocol === "https:" ? { ca: opts.ca, rejectUnauthorized: opts.rejectUnauthorized ?? true } : {}),
    });
    req.on("upgrade", (res, socket: Socket, head: Buffer) => {
      if (head.length > 0) socket.unshift(head);
      const conn = new SpdyConnection(socket, { isServer: false });
      resolve({ conn, protocol: String(res.headers[STREAM_PROTOCOL_HEADER.toLowerCase()] ?? "") });
    });
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => reject(new UpgradeRefusedError(res.statusCode ?? 0, Buffer.concat(chunks).toString(), res.headers)));
    });
    req.on("error", reject);
    req.end();
  });
}

export interface RemoteCommandStreams {
  error: SpdyStream;
  stdin?: SpdyStream;
  stdout?: SpdyStream;
  stderr?: SpdyStream;
  resize?: SpdyStream;
}

/** Opens the exec/attach streams in client-go's order (error first) and waits for the replies. */
export async function openRemoteCommandStreams(conn: SpdyConnection, want: { stdin?: boolean; stdout?: boolean; stderr?: boolean; tty?: boolean }): Promise<RemoteCommandStreams> {
  const open = (type: string) => conn.openStream({ [STREAM_TYPE_HEADER]: type });
  const s: RemoteCommandStreams = { error: open(StreamType.error) };
  if (want.stdin) s.stdin = open(StreamType.stdin);
  if (want.stdout) s.stdout = open(StreamType.stdout);
  if (want.stderr && !want.tty) s.stderr = open(StreamType.stderr);
  if (want.tty) s.resize = open(StreamType.resize);
  await Promise.all(Object.values(s).map((st: SpdyStream) => st.replied));
  return s;
}

export const readAll = async (r: Readable): Promise<Buffer> => {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
};

export interface RemoteCommandResult { stdout: Buffer; stderr: Buffer; error: string; protocol: string }

/** Runs a whole exec/attach session: sends `stdin` (then half-closes), collects output and the error-stream text. */
export async function runRemoteCommand(url: string, opts: DialOptions & { stdin?: Buffer | Readable; stdout?: boolean; stderr?: boolean; tty?: boolean; resize?: { width: number; height: number } }): Promise<RemoteCommandResult> {
  const { conn, protocol } = await dialSpdy(url, opts);
  try {
    const s = await openRemoteCommandStreams(conn, { stdin: opts.stdin !== undefined, stdout: opts.stdout ?? true, stderr: opts.stderr ?? !opts.tty, tty: opts.tty });
    if (s.resize && opts.resize) s.resize.write(JSON.stringify({ Width: opts.resize.width, Height: opts.resize.height }) + "\n");
    if (s.stdin && opts.stdin !== undefined) {
      if (Buffer.isBuffer(opts.stdin)) s.stdin.end(opts.stdin);
      else opts.stdin.pipe(s.stdin);
    }
    const [stdout, stderr, error] = await Promise.all([
      s.stdout ? readAll(s.stdout) : Buffer.alloc(0),
      s.stderr ? readAll(s.stderr) : Buffer.alloc(0),
      readAll(s.error),
    ]);
    return { stdout, stderr, error: error.toString(), protocol };
  } finally {
    conn.destroy();
  }
}

/** Opens one port-forward connection (error stream first, like client-go). */
export async function openPortForwardPair(conn: SpdyConnection, port: number, requestId: string): Promise<{ data: SpdyStream; error: SpdyStream }> {
  const error = conn.openStream({ [STREAM_TYPE_HEADER]: StreamType.error, [PORT_HEADER]: String(port), [REQUEST_ID_HEADER]: requestId });
  const data = conn.openStream({ [STREAM_TYPE_HEADER]: StreamType.data, [PORT_HEADER]: String(port), [REQUEST_ID_HEADER]: requestId });
  await Promise.all([error.replied, data.replied]);
  return { data, error };
}
