// A raw HTTP/2 client for tests that put exact frames on berthd's socket: it writes bytes,
// reads frames, and every wait is bounded. Used by the replays of old gRPC clients
// (conformance/suite/old-clients.test.ts) and the attacks on berth's HTTP/2 layer
// (conformance/suite/h2-attacks.test.ts).
import { connect as netConnect, type Socket } from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import { VersionRequestSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import { HpackDecoder, encodeWithoutIndexing } from "../../cri-server/transport/hpack.ts";
import { CLIENT_PREFACE, FLAG, FRAME, frameHeader, settingsFrame, u32 } from "../../cri-server/transport/h2.ts";

export interface Frame { type: number; flags: number; streamId: number; payload: Buffer }

/** A raw HTTP/2 client connection: writes bytes, reads frames, every wait bounded. */
export class RawH2 {
  private buf = Buffer.alloc(0);
  private frames: Frame[] = [];
  private waiters: (() => void)[] = [];
  closed = false;
  readonly sock: Socket;
  private constructor(sock: Socket) {
    this.sock = sock;
    sock.on("data", (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      while (this.buf.length >= 9) {
        const len = this.buf.readUIntBE(0, 3);
        if (this.buf.length < 9 + len) break;
        this.frames.push({ type: this.buf[3]!, flags: this.buf[4]!, streamId: this.buf.readUInt32BE(5) & 0x7fffffff, payload: Buffer.from(this.buf.subarray(9, 9 + len)) });
        this.buf = this.buf.subarray(9 + len);
      }
      this.wake();
    });
    sock.on("close", () => { this.closed = true; this.wake(); });
    sock.on("error", () => { /* seen as close */ });
  }
  static open(path: string): Promise<RawH2> {
    return new Promise((resolve, reject) => {
      const s = netConnect(path);
      s.once("connect", () => resolve(new RawH2(s)));
      s.once("error", reject);
    });
  }
  private wake() { for (const w of this.waiters.splice(0)) w(); }
  write(...parts: Buffer[]) { this.sock.write(Buffer.concat(parts)); }
  /** Waits (at most ms) for a frame matching `match`; returns it and everything received before it. */
  async until(match: (f: Frame) => boolean, what: string, ms = 10_000): Promise<Frame> {
    const end = Date.now() + ms;
    for (;;) {
      const i = this.frames.findIndex(match);
      if (i >= 0) return this.frames.splice(0, i + 1)[i]!;
      if (this.closed) throw new Error(`connection closed before ${what}; frames: ${JSON.stringify(this.frames.map((f) => [f.type, f.flags, f.streamId]))}`);
      const left = end - Date.now();
      if (left <= 0) throw new Error(`no ${what} within ${ms} ms`);
      await new Promise<void>((r) => { const t = setTimeout(r, left); this.waiters.push(() => { clearTimeout(t); r(); }); });
    }
  }
  /** Frames received so far and not yet consumed. */
  drain(): Frame[] { return this.frames.splice(0); }
  async waitClosed(ms = 10_000) {
    const end = Date.now() + ms;
    while (!this.closed) {
      if (Date.now() > end) throw new Error(`connection still open after ${ms} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  close() { this.sock.destroy(); }
}

/** The header block of a gRPC call to `path` as a client sends it, literals without indexing. */
export const grpcRequestHeaders = (path: string) => encodeWithoutIndexing([
  { name: ":method", value: "POST" }, { name: ":scheme", value: "http" }, { name: ":path", value: path },
  { name: ":authority", value: "localhost" }, { name: "content-type", value: "application/grpc" }, { name: "te", value: "trailers" },
]);

// u32 and settingsFrame are the server's own (transport/h2.ts): one encoding of each field.
export { settingsFrame, u32 };
export const headersFrame = (sid: number, block: Buffer, flags: number = FLAG.END_HEADERS) => Buffer.concat([frameHeader(block.length, FRAME.HEADERS, flags, sid), block]);
export const grpcMessage = (msg: Uint8Array) => { const h = Buffer.alloc(5); h.writeUInt32BE(msg.length, 1); return Buffer.concat([h, msg]); };
export const dataFrame = (sid: number, payload: Buffer, flags: number = FLAG.END_STREAM) => Buffer.concat([frameHeader(payload.length, FRAME.DATA, flags, sid), payload]);
/** Frames of `n` calls (streams 1, 3, ...), each opened with `block`, sent `body` and reset at once (rapid reset). */
export function callsOpenedAndReset(n: number, block: Buffer, body: Buffer): Buffer[] {
  const parts: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const sid = 1 + 2 * i;
    parts.push(headersFrame(sid, block), dataFrame(sid, body), frameHeader(4, FRAME.RST_STREAM, 0, sid), u32(8 /* CANCEL */));
  }
  return parts;
}
export const versionRequest = () => grpcMessage(toBinary(VersionRequestSchema, create(VersionRequestSchema, { version: "v1" })));

/** Opens a connection the way a client does: preface, SETTINGS, ack of the server's SETTINGS. */
export async function handshake(socket: string, g: { settings: [number, number][] }): Promise<RawH2> {
  const c = await RawH2.open(socket);
  c.write(CLIENT_PREFACE, settingsFrame(g.settings));
  await c.until((f) => f.type === FRAME.SETTINGS && !(f.flags & FLAG.ACK), "the server's SETTINGS");
  c.write(frameHeader(0, FRAME.SETTINGS, FLAG.ACK, 0));
  return c;
}

/** Reads one response (headers, data, trailers) of a stream, decoding with the connection's decoder. */
export async function response(c: RawH2, d: HpackDecoder, sid: number) {
  const headers: Record<string, string> = {};
  const body: Buffer[] = [];
  for (;;) {
    const f = await c.until((x) => x.streamId === sid && [FRAME.HEADERS, FRAME.DATA, FRAME.RST_STREAM].includes(x.type as never) || x.type === FRAME.GOAWAY, `the response on stream ${sid}`);
    if (f.type === FRAME.GOAWAY) {
      if (f.payload.readUInt32BE(4) === 0 && (f.payload.readUInt32BE(0) & 0x7fffffff) >= sid) continue; // a graceful shutdown that still serves this stream
      throw new Error(`GOAWAY with error code ${f.payload.readUInt32BE(4)} instead of a response`);
    }
    if (f.type === FRAME.RST_STREAM) throw new Error(`RST_STREAM with error code ${f.payload.readUInt32BE(0)} instead of a response`);
    if (f.type === FRAME.DATA) body.push(f.payload);
    else for (const h of d.decode(f.payload).fields) headers[h.name] = h.value;
    if (f.flags & FLAG.END_STREAM) break;
  }
  const data = Buffer.concat(body);
  return { headers, message: data.length >= 5 ? data.subarray(5, 5 + data.readUInt32BE(1)) : undefined };
}

