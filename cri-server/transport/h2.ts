// berth's HTTP/2 (RFC 9113), the server side of one connection, as much of it as gRPC over the
// CRI socket needs: streams the client opens, flow control both ways, SETTINGS, PING, GOAWAY,
// RST_STREAM, CONTINUATION and padding. No server push, no priorities (PRIORITY is read and
// ignored), no dynamic table in what berth sends (every response field is a static index or a
// literal without indexing; after a client's SETTINGS_HEADER_TABLE_SIZE the next block starts
// with a table size update to 0, which RFC 7541 4.2 asks of an encoder).
//
// Why not node:http2: loading it costs berthd 8.4 MB of RSS (4.5 MB anonymous), and each call
// pays for a Duplex stream object, header objects and trailers through nghttp2, about 0.08 ms
// more CPU than framing here. It also refuses grpc-go < 1.58's :authority (the socket path),
// which needed a layer of its own in front of it; berth reads :authority and ignores it.
//
// Every frame is hostile input. Bounds:
// - the first frame must be SETTINGS, of at most MAX_SETTINGS entries;
// - a frame longer than 16384 octets (SETTINGS_MAX_FRAME_SIZE, never raised): GOAWAY
//   FRAME_SIZE_ERROR, before its payload is read;
// - a header block of more than MAX_CONTINUATIONS CONTINUATION frames or HEADER_BLOCK_MAX
//   octets: GOAWAY ENHANCE_YOUR_CALM;
// - a decoded header list over MAX_HEADER_LIST_SIZE octets: the stream is reset (the block is
//   still decoded, so HPACK state stays in step); malformed HPACK: GOAWAY COMPRESSION_ERROR;
// - at most maxConcurrentStreams calls per connection: REFUSED_STREAM beyond, which clients
//   retry. A call counts until its handler has finished, not only while its stream is open, so
//   streams opened and reset at once (rapid reset) cannot start handlers without bound;
// - DATA beyond the window berth advertised: GOAWAY FLOW_CONTROL_ERROR. berth gives window back
//   as soon as a stream's bytes are handed on (as views into the read: the server copies what it
//   keeps, since a kept view would pin the whole read); what a call may hold is the server's bound;
// - response bytes queued for clients that do not read, across all connections: at most
//   MAX_QUEUED_RESPONSE_BYTES (the server fails calls beyond it, see canQueue);
// - berth stops reading the socket while more than OUTPUT_HIGH octets wait to be written to it
//   (a client that floods PINGs or SETTINGS and never reads gets no more answers queued), and
//   sends DATA only while the socket takes it.
import type { Socket } from "node:net";
import { HpackDecoder, HpackError, encodeBlock, encodeWithoutIndexing } from "./hpack.ts";

export const CLIENT_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
export const FRAME = { DATA: 0, HEADERS: 1, PRIORITY: 2, RST_STREAM: 3, SETTINGS: 4, PUSH_PROMISE: 5, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 } as const;
export const H2_ERROR = {
  NO_ERROR: 0, PROTOCOL_ERROR: 1, INTERNAL_ERROR: 2, FLOW_CONTROL_ERROR: 3, STREAM_CLOSED: 5,
  FRAME_SIZE_ERROR: 6, REFUSED_STREAM: 7, CANCEL: 8, COMPRESSION_ERROR: 9, ENHANCE_YOUR_CALM: 11,
} as const;
const SETTING = { HEADER_TABLE_SIZE: 1, ENABLE_PUSH: 2, MAX_CONCURRENT_STREAMS: 3, INITIAL_WINDOW_SIZE: 4, MAX_FRAME_SIZE: 5, MAX_HEADER_LIST_SIZE: 6 } as const;

/** The largest frame payload berth reads (the protocol's default, never raised). */
export const MAX_FRAME_SIZE = 16_384;
/** The largest decoded header list a request may carry (advertised as SETTINGS_MAX_HEADER_LIST_SIZE). */
export const MAX_HEADER_LIST_SIZE = 65_536;
/** The most CONTINUATION frames after one HEADERS frame, and the most octets of one encoded block. */
export const MAX_CONTINUATIONS = 8;
export const HEADER_BLOCK_MAX = 65_536;
/** What a stream may send berth before berth gives window back, and the connection as a whole. */
export const STREAM_WINDOW = 1 << 20;
export const CONNECTION_WINDOW = 16 << 20;
/** Reading stops while more than this waits to go out on the socket; DATA goes out only below OUTPUT_LOW. */
const OUTPUT_HIGH = 1 << 20;
const OUTPUT_LOW = 256 << 10;
/** The most entries in one SETTINGS frame (real clients send up to 6), and SETTINGS frames in a connection's life. */
export const MAX_SETTINGS = 32;
export const MAX_SETTINGS_FRAMES = 1000;
/** A stream whose queued reply makes no progress (the client's window stays shut) this long is reset. */
export const SEND_STALL_MS = 60_000;
/** Response bytes waiting for clients' windows or sockets, across all connections. */
export const MAX_QUEUED_RESPONSE_BYTES = 256 << 20;
/** A stream's write() says "wait" once this much of its data is queued. */
const STREAM_HIGH = 256 << 10;
const MAX_WINDOW = 0x7fffffff;
/** The largest DATA frame berth sends, whatever the client allows. */
const MAX_DATA_FRAME = 64 << 10;
/** Past this a decoded header list is an attack on the decoder: GOAWAY. Below it, over MAX_HEADER_LIST_SIZE, the stream is refused. */
const DECODED_LIST_HARD_MAX = 1 << 20;
/** An HPACK dynamic table size update to 0 (RFC 7541 6.3). */
const TABLE_SIZE_ZERO = Buffer.from([0x20]);

export function frameHeader(length: number, type: number, flags: number, streamId: number): Buffer {
  const h = Buffer.allocUnsafe(9);
  h[0] = (length >>> 16) & 0xff;
  h[1] = (length >>> 8) & 0xff;
  h[2] = length & 0xff;
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId & 0x7fffffff, 5);
  return h;
}

/** A frame's payload length from its header at `pos`; over MAX_FRAME_SIZE is a connection error. */
function frameLength(buf: Buffer, pos = 0): number {
  const length = (buf[pos]! << 16) | (buf[pos + 1]! << 8) | buf[pos + 2]!;
  if (length > MAX_FRAME_SIZE) throw new ConnectionError(H2_ERROR.FRAME_SIZE_ERROR, `a frame of ${length} octets (the limit is ${MAX_FRAME_SIZE})`);
  return length;
}

/** A 32-bit big-endian field (a window increment, an error code, a SETTINGS value). */
export function u32(n: number): Buffer { const b = Buffer.allocUnsafe(4); b.writeUInt32BE(n >>> 0, 0); return b; }

/** A SETTINGS frame (not an ACK) with these (id, value) entries. */
export function settingsFrame(entries: readonly (readonly [number, number])[]): Buffer {
  const p = Buffer.alloc(6 * entries.length);
  entries.forEach(([id, v], i) => { p.writeUInt16BE(id, 6 * i); p.writeUInt32BE(v, 6 * i + 2); });
  return Buffer.concat([frameHeader(p.length, FRAME.SETTINGS, 0, 0), p]);
}

class ConnectionError extends Error {
  readonly code: number;
  constructor(code: number, message: string) { super(message); this.code = code; }
}

/** A header block berth sends: fields as literals without indexing (static names where there are). */
export function headerBlock(fields: readonly (readonly [string, string])[]): Buffer {
  return encodeWithoutIndexing(fields.map(([name, value]) => ({ name, value })));
}
/** `:status: 200` (static index 8) and `content-type: application/grpc`. */
export const GRPC_RESPONSE_HEADERS = Buffer.concat([encodeBlock([{ op: "indexed", index: 8 }]), headerBlock([["content-type", "application/grpc"]])]);

/** A token of lowercase characters (RFC 9110 5.6.2), with a leading colon for pseudo-headers. */
const HEADER_NAME = /^:?[!#$%&'*+\-.^_`|~0-9a-z]+$/;
const CONNECTION_SPECIFIC = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"]);
const REQUEST_PSEUDO = new Set([":method", ":scheme", ":path", ":authority"]);

/** Why a decoded request header list is malformed (RFC 9113 8.2-8.3), or undefined. */
export function requestHeaderProblem(fields: readonly { name: string; value: string }[]): string | undefined {
  let regular = false;
  const seen = new Set<string>();
  for (const { name, value } of fields) {
    if (name.length === 0) return "an empty header name";
    if (!HEADER_NAME.test(name)) return `header name ${JSON.stringify(name.slice(0, 64))} is not lowercase token characters`;
    if (/[\0\r\n]/.test(value)) return `header ${JSON.stringify(name.slice(0, 64))} has NUL, CR or LF in its value`;
    if (name[0] === ":") {
      if (regular) return `pseudo-header ${name} after a regular header`;
      if (!REQUEST_PSEUDO.has(name)) return `pseudo-header ${JSON.stringify(name.slice(0, 64))} is not a request pseudo-header`;
      if (seen.has(name)) return `pseudo-header ${name} twice`;
      seen.add(name);
      continue;
    }
    regular = true;
    if (CONNECTION_SPECIFIC.has(name)) return `connection-specific header ${name}`;
    if (name === "te" && value !== "trailers") return `te ${JSON.stringify(value.slice(0, 64))} (only "trailers" is allowed)`;
  }
  for (const p of [":method", ":scheme", ":path"]) if (!seen.has(p)) return `no ${p}`;
  return undefined;
}

export interface H2Handlers {
  /** A new request stream with its headers (names lowercase; repeated regular fields joined with ", "). */
  stream(stream: H2Stream, headers: Record<string, string>): void;
  /** The connection ended: GOAWAY with `code` for what the client sent, or berth's own fault. */
  error?(code: number, message: string, fault: "client" | "berth"): void;
}

/**
 * What all connections of one server share: response bytes queued and not yet sent, and their
 * bound. One connection may hold at most a quarter of it.
 */
export interface H2Shared { queued: number; limit: number }

export interface H2Options {
  maxConcurrentStreams: number;
  shared: H2Shared;
  /** SEND_STALL_MS unless a test lowers it. */
  sendStallMs?: number;
}

/** One request stream: what the client sends comes to its callbacks; what berth answers goes out in order. */
export class H2Stream {
  readonly id: number;
  /** Request bytes (DATA payloads) as they come: views into the socket's read, so copy what is kept. */
  onData: ((chunk: Buffer) => void) | undefined;
  /** The request is complete (END_STREAM). */
  onEnd: (() => void) | undefined;
  /** The stream is gone: the response ended, the client reset it, or the connection closed. */
  onClose: (() => void) | undefined;
  /** The data queued by write() went out (below the mark again). */
  onDrain: (() => void) | undefined;
  /** WINDOW_UPDATEs for this stream minus the bytes sent on it: the window is the client's initial window plus this. */
  sendCredit = 0;
  /** What berth has left of the window it gave (what the client may still send). */
  recvWindow = STREAM_WINDOW;
  /** Octets received and handed on since berth last gave window back. */
  recvConsumed = 0;
  remoteEnded = false;
  headersSent = false;
  /** berth's END_STREAM is queued (the response is complete on berth's side). */
  localEnded = false;
  closed = false;
  /** The server is done with the call (its handler finished, or none ran). */
  released = false;
  /** Data not yet sent (the window or the socket was full), then the trailers. */
  readonly queue: Buffer[] = [];
  queued = 0;
  trailers: Buffer | undefined;
  /** Whether write() said "wait" (onDrain is due). */
  waiting = false;
  /** When its queue last moved (or began), for SEND_STALL_MS. */
  lastProgress = 0;
  readonly #conn: H2Connection;

  constructor(conn: H2Connection, id: number) {
    this.#conn = conn;
    this.id = id;
  }

  /** Sends a response header block; with `endStream` it is the whole response (trailers only). */
  respond(block: Buffer, endStream = false): void {
    if (this.closed || this.headersSent) return;
    this.headersSent = true;
    if (endStream) this.localEnded = true;
    this.#conn.sendHeaders(this, block, endStream);
  }

  /** Whether `bytes` more may be queued: responses waiting for slow clients are bounded across all connections. */
  canQueue(bytes: number): boolean { return this.#conn.canQueue(bytes); }

  /** Queues response data; false when the caller should wait for onDrain. */
  write(data: Buffer): boolean {
    if (this.closed || this.localEnded) return true;
    this.#conn.enqueue(this, data);
    this.#conn.pump(this);
    if (this.queued > STREAM_HIGH) { this.waiting = true; return false; }
    return true;
  }

  /** Ends the response: `data` then the trailer block, or END_STREAM on the data when there are no trailers. */
  end(data?: Buffer, trailers?: Buffer): void {
    if (this.closed || this.localEnded) return;
    this.localEnded = true;
    if (this.#conn.sendWhole(this, data, trailers)) return;
    if (data?.length) this.#conn.enqueue(this, data);
    this.trailers = trailers ?? Buffer.alloc(0);
    this.#conn.pump(this);
  }

  /** Resets the stream (RST_STREAM with `code`). */
  reset(code: number = H2_ERROR.CANCEL): void { this.#conn.resetStream(this, code); }

  /** The server is done with the call: its slot frees once the stream has closed too. */
  release(): void { this.#conn.release(this); }
}

/** The server side of one HTTP/2 connection on `socket`. */
export class H2Connection {
  readonly #socket: Socket;
  readonly #handlers: H2Handlers;
  readonly #opts: H2Options;
  readonly #decoder = new HpackDecoder({ maxTableSize: 4096, maxHeaderListSize: DECODED_LIST_HARD_MAX });
  readonly #streams = new Map<number, H2Stream>();
  /** Calls that count against the limit: created and not yet both closed and released. */
  #active = 0;
  /** Streams with data or trailers waiting to go out, taken in turn (a stream that sent goes to the back). */
  readonly #sending = new Set<H2Stream>();
  /** Streams with data and no window of their own left: back in #sending on their WINDOW_UPDATE or a larger initial window. */
  readonly #blocked = new Set<H2Stream>();
  /** Response bytes queued on this connection (its share of H2Shared). */
  #queued = 0;
  #settingsFrames = 0;
  readonly #stallMs: number;
  #stallTimer: NodeJS.Timeout | undefined;
  /** Streams owed a WINDOW_UPDATE for bytes handed on. */
  readonly #owed = new Set<H2Stream>();
  #pending: Buffer | undefined;
  #prefaceSeen = 0;
  #settingsSeen = false;
  #lastStreamId = 0;
  /** A header block being received: its stream, flags and fragments. */
  #block: { streamId: number; endStream: boolean; parts: Buffer[]; length: number; frames: number } | undefined;
  #sendWindow = 65_535;
  #peerInitialWindow = 65_535;
  #peerMaxFrame = MAX_FRAME_SIZE;
  /** The client changed SETTINGS_HEADER_TABLE_SIZE: berth's next block starts with a size update to 0. */
  #tableSizeUpdate = false;
  #recvWindow = CONNECTION_WINDOW;
  #recvConsumed = 0;
  #out: Buffer[] = [];
  #outBytes = 0;
  #flushScheduled = false;
  #goingAway = false;
  /** berth has ended its side of the socket: nothing more is written. */
  #ended = false;
  #dead = false;
  #paused = false;
  readonly #idleWaiters: (() => void)[] = [];

  constructor(socket: Socket, handlers: H2Handlers, opts: H2Options) {
    this.#socket = socket;
    this.#handlers = handlers;
    this.#opts = opts;
    this.#stallMs = opts.sendStallMs ?? SEND_STALL_MS;
    // The server's preface: SETTINGS, then the connection window raised from 65,535.
    this.#emit(
      settingsFrame([[SETTING.MAX_CONCURRENT_STREAMS, opts.maxConcurrentStreams], [SETTING.INITIAL_WINDOW_SIZE, STREAM_WINDOW], [SETTING.MAX_HEADER_LIST_SIZE, MAX_HEADER_LIST_SIZE]]),
      frameHeader(4, FRAME.WINDOW_UPDATE, 0, 0), u32(CONNECTION_WINDOW - 65_535),
    );
    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    socket.on("drain", () => {
      if (this.#paused) { this.#paused = false; socket.resume(); }
      this.pump();
    });
    socket.once("close", () => this.#gone());
    socket.on("error", () => { /* 'close' follows */ });
  }

  /**
   * GOAWAY (NO_ERROR): no new streams. Resolves once the open streams have ended and everything
   * queued was handed to the socket (or the socket closed).
   */
  goAway(): Promise<void> {
    const done = this.#dead || this.#socket.writableFinished ? Promise.resolve() : new Promise<void>((r) => this.#idleWaiters.push(r));
    if (!this.#dead) {
      if (!this.#goingAway && !this.#ended) this.#emit(frameHeader(8, FRAME.GOAWAY, 0, 0), u32(this.#lastStreamId), u32(H2_ERROR.NO_ERROR));
      this.#goingAway = true;
      this.#endIfIdle();
    }
    return done;
  }

  destroy(): void { this.#socket.destroy(); this.#gone(); }

  // ---- output ----

  /** Queues frames; they go out together at the end of this turn (one writev). */
  #emit(...bufs: Buffer[]): void {
    if (this.#dead || this.#ended) return;
    for (const b of bufs) { this.#out.push(b); this.#outBytes += b.length; }
    if (!this.#flushScheduled) { this.#flushScheduled = true; queueMicrotask(() => this.#flush()); }
  }

  #flush(): void {
    this.#flushScheduled = false;
    const out = this.#out;
    if (!out.length || this.#dead) return;
    this.#out = [];
    this.#outBytes = 0;
    const s = this.#socket;
    if (out.length === 1) s.write(out[0]!);
    else { s.cork(); for (const b of out) s.write(b); s.uncork(); }
    if (s.writableLength > OUTPUT_HIGH && !this.#paused) { this.#paused = true; s.pause(); }
    // The socket took it all without asking to wait (no 'drain' will come): go on with the queues.
    if (this.#sending.size && s.writableLength <= OUTPUT_LOW) queueMicrotask(() => this.pump());
  }

  canQueue(bytes: number): boolean {
    const { shared } = this.#opts;
    return shared.queued + bytes <= shared.limit && this.#queued + bytes <= shared.limit / 4;
  }

  enqueue(st: H2Stream, data: Buffer): void {
    if (!data.length) return;
    if (st.queued === 0) st.lastProgress = Date.now();
    st.queue.push(data);
    st.queued += data.length;
    this.#queued += data.length;
    this.#opts.shared.queued += data.length;
    this.#stallTimer ??= setInterval(() => this.#checkStalls(), this.#stallMs / 6).unref();
  }

  #unqueue(st: H2Stream, bytes: number): void {
    st.queued -= bytes;
    this.#queued -= bytes;
    this.#opts.shared.queued -= bytes;
  }

  /** Resets streams whose queued reply has not moved for SEND_STALL_MS: their bytes go back to the shared bound. */
  #checkStalls(): void {
    const now = Date.now();
    for (const set of [this.#sending, this.#blocked]) {
      for (const st of set) if (st.queued > 0 && now - st.lastProgress >= this.#stallMs) this.resetStream(st, H2_ERROR.CANCEL);
    }
    if (this.#queued === 0 || this.#dead) { clearInterval(this.#stallTimer); this.#stallTimer = undefined; }
  }

  sendHeaders(st: H2Stream, block: Buffer, endStream: boolean): void {
    this.#emitBlock(st.id, block, endStream);
    if (endStream) this.#localDone(st);
  }

  #emitBlock(id: number, block: Buffer, endStream: boolean): void {
    if (this.#tableSizeUpdate) { this.#tableSizeUpdate = false; block = Buffer.concat([TABLE_SIZE_ZERO, block]); }
    const max = this.#peerMaxFrame;
    if (block.length <= max) { this.#emit(frameHeader(block.length, FRAME.HEADERS, FLAG.END_HEADERS | (endStream ? FLAG.END_STREAM : 0), id), block); return; }
    for (let o = 0; o < block.length; o += max) {
      const part = block.subarray(o, o + max);
      const last = o + max >= block.length;
      const type = o === 0 ? FRAME.HEADERS : FRAME.CONTINUATION;
      this.#emit(frameHeader(part.length, type, (last ? FLAG.END_HEADERS : 0) | (o === 0 && endStream ? FLAG.END_STREAM : 0), id), part);
    }
  }

  /**
   * Sends what the windows and the socket allow, one frame per stream in turn (a stream that
   * sent goes to the back, so one that always has data does not starve the others), then each
   * stream's trailers after its data. Streams without window of their own wait in #blocked;
   * with the connection's window shut nothing is looked at, so a frame from the client that
   * opens no window costs nothing here.
   */
  pump(st?: H2Stream): void {
    if (this.#dead) return;
    if (st) {
      if (st.queued === 0 && st.trailers !== undefined) { this.#finishStream(st); return; }
      if (!this.#blocked.has(st)) this.#sending.add(st);
    }
    for (const s of this.#sending) {
      if (s.closed) { this.#sending.delete(s); continue; }
      if (s.queued > 0) {
        if (this.#socket.writableLength + this.#outBytes > OUTPUT_LOW) return;
        if (this.#peerInitialWindow + s.sendCredit <= 0) { this.#sending.delete(s); this.#blocked.add(s); continue; }
        if (this.#sendWindow <= 0) return;
        const room = Math.min(this.#peerInitialWindow + s.sendCredit, this.#sendWindow, this.#peerMaxFrame, MAX_DATA_FRAME);
        let head = s.queue[0]!;
        if (head.length > room) { s.queue[0] = head.subarray(room); head = head.subarray(0, room); } else s.queue.shift();
        this.#unqueue(s, head.length);
        s.sendCredit -= head.length;
        this.#sendWindow -= head.length;
        s.lastProgress = Date.now();
        const endStream = s.queued === 0 && s.trailers !== undefined && s.trailers.length === 0;
        this.#emit(frameHeader(head.length, FRAME.DATA, endStream ? FLAG.END_STREAM : 0, s.id), head);
        if (endStream) { s.trailers = undefined; this.#localDone(s); continue; }
        this.#sending.delete(s);
        if (s.queued > 0) this.#sending.add(s); // to the back of the turn
      }
      if (s.queued === 0 && s.trailers !== undefined) { this.#finishStream(s); continue; }
      if (s.waiting && s.queued <= STREAM_HIGH) { s.waiting = false; s.onDrain?.(); }
      if (s.queued === 0) this.#sending.delete(s);
    }
  }

  /**
   * A whole reply at once, when nothing of the stream waits and the windows and the socket take
   * all of it now (a unary call's answer, nearly always): its DATA frames and trailers are
   * emitted here, without the queue and the turns of pump(). False when it must be queued.
   */
  sendWhole(st: H2Stream, data: Buffer | undefined, trailers: Buffer | undefined): boolean {
    const n = data?.length ?? 0;
    if (this.#dead || st.queued > 0 || this.#sending.has(st) || this.#blocked.has(st)) return false;
    if (n > this.#sendWindow || n > this.#peerInitialWindow + st.sendCredit || this.#socket.writableLength + this.#outBytes + n > OUTPUT_LOW) return false;
    const max = Math.min(this.#peerMaxFrame, MAX_DATA_FRAME);
    // Without trailers the last DATA frame ends the stream, as in pump()
    const endOnData = n > 0 && !trailers?.length;
    for (let o = 0; o < n; o += max) {
      const piece = data!.subarray(o, o + max);
      this.#emit(frameHeader(piece.length, FRAME.DATA, endOnData && o + max >= n ? FLAG.END_STREAM : 0, st.id), piece);
    }
    st.sendCredit -= n;
    this.#sendWindow -= n;
    if (endOnData) this.#localDone(st);
    else { st.trailers = trailers ?? Buffer.alloc(0); this.#finishStream(st); }
    return true;
  }

  /** All data sent: the trailers (or an empty DATA with END_STREAM) close berth's side. */
  #finishStream(st: H2Stream): void {
    const t = st.trailers!;
    st.trailers = undefined;
    if (t.length) this.#emitBlock(st.id, t, true);
    else this.#emit(frameHeader(0, FRAME.DATA, FLAG.END_STREAM, st.id));
    this.#localDone(st);
  }

  /** berth's side of the stream ended: closed if the client's has too, else the client is told to stop sending (RST_STREAM NO_ERROR). */
  #localDone(st: H2Stream): void {
    st.localEnded = true;
    if (!st.remoteEnded) this.#emit(frameHeader(4, FRAME.RST_STREAM, 0, st.id), u32(H2_ERROR.NO_ERROR));
    this.#close(st);
  }

  resetStream(st: H2Stream, code: number): void {
    if (st.closed) return;
    this.#emit(frameHeader(4, FRAME.RST_STREAM, 0, st.id), u32(code));
    this.#close(st);
  }

  release(st: H2Stream): void {
    if (st.released) return;
    st.released = true;
    if (st.closed) this.#active--;
  }

  #close(st: H2Stream): void {
    if (st.closed) return;
    st.closed = true;
    if (st.released) this.#active--;
    this.#streams.delete(st.id);
    this.#sending.delete(st);
    this.#blocked.delete(st);
    this.#owed.delete(st);
    this.#unqueue(st, st.queued);
    st.queue.length = 0;
    try {
      st.onClose?.();
    } catch (err) {
      this.#handlers.error?.(H2_ERROR.INTERNAL_ERROR, `a stream's close handler threw: ${(err as Error).message}`, "berth");
    }
    this.#endIfIdle();
  }

  #endIfIdle(): void {
    if (!this.#goingAway || this.#streams.size > 0 || this.#ended || this.#dead) return;
    this.#flush();
    this.#ended = true;
    const s = this.#socket;
    const done = () => { for (const w of this.#idleWaiters.splice(0)) w(); };
    s.once("finish", done);
    s.end();
  }

  #gone(): void {
    clearInterval(this.#stallTimer);
    if (this.#dead) return;
    this.#dead = true;
    this.#out = [];
    this.#outBytes = 0;
    for (const st of [...this.#streams.values()]) this.#close(st);
    for (const w of this.#idleWaiters.splice(0)) w();
  }

  /** A connection error: GOAWAY with the code, then the socket ends. */
  #fail(code: number, message: string, fault: "client" | "berth"): void {
    if (this.#dead) return;
    this.#emit(frameHeader(8, FRAME.GOAWAY, 0, 0), u32(this.#lastStreamId), u32(code));
    this.#flush();
    this.#handlers.error?.(code, message, fault);
    this.#dead = true;
    clearInterval(this.#stallTimer);
    const s = this.#socket;
    // goAway() callers wait for the GOAWAY to be handed to the socket (or for the socket to go)
    const done = () => { for (const w of this.#idleWaiters.splice(0)) w(); };
    s.once("finish", done);
    s.once("close", done);
    s.end();
    setTimeout(() => s.destroy(), 1000).unref();
    for (const st of [...this.#streams.values()]) this.#close(st);
  }

  // ---- input ----

  #onData(chunk: Buffer): void {
    if (this.#dead) return;
    let buf = chunk;
    if (this.#prefaceSeen < CLIENT_PREFACE.length) {
      const n = Math.min(CLIENT_PREFACE.length - this.#prefaceSeen, buf.length);
      if (!buf.subarray(0, n).equals(CLIENT_PREFACE.subarray(this.#prefaceSeen, this.#prefaceSeen + n))) {
        // not HTTP/2 with prior knowledge: nothing to answer in
        this.#dead = true;
        this.#handlers.error?.(H2_ERROR.PROTOCOL_ERROR, "the client did not send the HTTP/2 preface", "client");
        this.#socket.destroy();
        return;
      }
      this.#prefaceSeen += n;
      buf = buf.subarray(n);
    }
    try {
      const pending = this.#pending;
      this.#pending = undefined;
      if (pending && pending.length < 9) buf = Buffer.concat([pending, buf]); // a cut frame header: rare, a few octets
      else if (pending) {
        // A frame cut by the last read: complete it from this one and copy only that frame
        // (joining whole reads would copy every read again).
        const need = 9 + frameLength(pending) - pending.length;
        if (buf.length < need) { this.#pending = Buffer.concat([pending, buf]); return; }
        const whole = Buffer.concat([pending, buf.subarray(0, need)]);
        if (this.#frames(whole) !== whole.length) throw new Error("a completed frame was not consumed");
        if (this.#dead) return;
        buf = buf.subarray(need);
      }
      const used = this.#frames(buf);
      if (this.#dead) return;
      if (used < buf.length) this.#pending = Buffer.from(buf.subarray(used));
    } catch (err) {
      if (err instanceof ConnectionError) { this.#fail(err.code, err.message, "client"); return; }
      if (err instanceof HpackError) { this.#fail(H2_ERROR.COMPRESSION_ERROR, err.message, "client"); return; }
      // berth's own fault (a handler threw): this connection ends, berthd goes on
      this.#fail(H2_ERROR.INTERNAL_ERROR, `internal error: ${(err as Error).message}`, "berth");
      return;
    }
    this.#giveWindowBack();
  }

  /** Handles every whole frame at the start of `buf`; returns the octets used. */
  #frames(buf: Buffer): number {
    let pos = 0;
    while (buf.length - pos >= 9) {
      const length = frameLength(buf, pos);
      if (buf.length - pos < 9 + length) break;
      const type = buf[pos + 3]!;
      const flags = buf[pos + 4]!;
      const id = buf.readUInt32BE(pos + 5) & 0x7fffffff;
      const payload = buf.subarray(pos + 9, pos + 9 + length);
      pos += 9 + length;
      this.#frame(type, flags, id, payload);
      if (this.#dead) return pos;
    }
    // a longer frame is refused from its header, before its payload is read
    if (buf.length - pos >= 3) frameLength(buf, pos);
    return pos;
  }

  #frame(type: number, flags: number, id: number, p: Buffer): void {
    if (this.#block && type !== FRAME.CONTINUATION) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, `frame type ${type} inside a header block`);
    if (!this.#settingsSeen) {
      if (type !== FRAME.SETTINGS || flags & FLAG.ACK) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, `the first frame after the preface is type ${type}, not SETTINGS`);
      this.#settingsSeen = true;
    }
    switch (type) {
      case FRAME.DATA: return this.#data(flags, id, p);
      case FRAME.HEADERS: return this.#headers(flags, id, p);
      case FRAME.CONTINUATION: return this.#continuation(flags, id, p);
      case FRAME.PRIORITY:
        if (id === 0) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, "PRIORITY on stream 0");
        if (p.length !== 5) throw new ConnectionError(H2_ERROR.FRAME_SIZE_ERROR, `PRIORITY of ${p.length} octets`);
        return;
      case FRAME.RST_STREAM: {
        if (id === 0) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, "RST_STREAM on stream 0");
        if (p.length !== 4) throw new ConnectionError(H2_ERROR.FRAME_SIZE_ERROR, `RST_STREAM of ${p.length} octets`);
        if (id > this.#lastStreamId) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, `RST_STREAM on idle stream ${id}`);
        const st = this.#streams.get(id);
        if (st) this.#close(st);
        return;
      }
      case FRAME.SETTINGS: return this.#settings(flags, id, p);
      case FRAME.PUSH_PROMISE: throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, "PUSH_PROMISE from a client");
      case FRAME.PING:
        if (id !== 0) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, "PING on a stream");
        if (p.length !== 8) throw new ConnectionError(H2_ERROR.FRAME_SIZE_ERROR, `PING of ${p.length} octets`);
        if (!(flags & FLAG.ACK)) this.#emit(frameHeader(8, FRAME.PING, FLAG.ACK, 0), Buffer.from(p));
        return;
      case FRAME.GOAWAY:
        if (id !== 0) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, "GOAWAY on a stream");
        if (p.length < 8) throw new ConnectionError(H2_ERROR.FRAME_SIZE_ERROR, `GOAWAY of ${p.length} octets`);
        // The client is leaving: it opens nothing more and closes the socket when it is done
        // (RFC 9113 6.8 forbids only the receiver, berth, to open streams, which it never does).
        return;
      case FRAME.WINDOW_UPDATE: return this.#windowUpdate(id, p);
      default: return; // unknown frame types are ignored (RFC 9113 4.1)
    }
  }

  /** A frame's payload without its padding (PADDED flag). */
  #unpad(flags: number, p: Buffer, what: string): Buffer {
    if (!(flags & FLAG.PADDED)) return p;
    if (p.length < 1) throw new ConnectionError(H2_ERROR.FRAME_SIZE_ERROR, `padded ${what} without a pad length`);
    const pad = p[0]!;
    if (pad >= p.length) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, `${what} padding of ${pad} octets in a ${p.length}-octet payload`);
    return p.subarray(1, p.length - pad);
  }

  #data(flags: number, id: number, p: Buffer): void {
    if (id === 0) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, "DATA on stream 0");
    if (id > this.#lastStreamId) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, `DATA on idle stream ${id}`);
    // Flow control counts the whole payload, padding included.
    this.#recvWindow -= p.length;
    if (this.#recvWindow < 0) throw new ConnectionError(H2_ERROR.FLOW_CONTROL_ERROR, "DATA beyond the connection's window");
    this.#recvConsumed += p.length;
    const data = this.#unpad(flags, p, "DATA");
    const st = this.#streams.get(id);
    if (!st || st.remoteEnded) {
      // A stream berth already closed: the client may not know yet. One it ended itself is an error.
      if (st) this.resetStream(st, H2_ERROR.STREAM_CLOSED);
      return;
    }
    st.recvWindow -= p.length;
    if (st.recvWindow < 0) { this.resetStream(st, H2_ERROR.FLOW_CONTROL_ERROR); return; }
    st.recvConsumed += p.length;
    this.#owed.add(st);
    const end = (flags & FLAG.END_STREAM) !== 0;
    if (end) st.remoteEnded = true; // before the callbacks: an answer from onData closes a finished exchange
    if (data.length) st.onData?.(data);
    if (end && !st.closed) st.onEnd?.();
  }

  /** Gives back window for what was handed on, in steps of half a window. */
  #giveWindowBack(): void {
    if (this.#dead) return;
    if (this.#recvConsumed >= CONNECTION_WINDOW / 2) {
      this.#emit(frameHeader(4, FRAME.WINDOW_UPDATE, 0, 0), u32(this.#recvConsumed));
      this.#recvWindow += this.#recvConsumed;
      this.#recvConsumed = 0;
    }
    for (const st of this.#owed) {
      if (st.closed || st.remoteEnded) { this.#owed.delete(st); continue; }
      if (st.recvConsumed < STREAM_WINDOW / 2) continue;
      this.#emit(frameHeader(4, FRAME.WINDOW_UPDATE, 0, st.id), u32(st.recvConsumed));
      st.recvWindow += st.recvConsumed;
      st.recvConsumed = 0;
      this.#owed.delete(st);
    }
  }

  #headers(flags: number, id: number, p: Buffer): void {
    if (id === 0) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, "HEADERS on stream 0");
    let frag = this.#unpad(flags, p, "HEADERS");
    if (flags & FLAG.PRIORITY) {
      if (frag.length < 5) throw new ConnectionError(H2_ERROR.FRAME_SIZE_ERROR, "HEADERS too short for its priority");
      frag = frag.subarray(5);
    }
    this.#block = { streamId: id, endStream: (flags & FLAG.END_STREAM) !== 0, parts: [frag], length: frag.length, frames: 0 };
    if (frag.length > HEADER_BLOCK_MAX) throw new ConnectionError(H2_ERROR.ENHANCE_YOUR_CALM, `a header block of more than ${HEADER_BLOCK_MAX} octets`);
    if (flags & FLAG.END_HEADERS) this.#blockDone();
  }

  #continuation(flags: number, id: number, p: Buffer): void {
    const b = this.#block;
    if (!b || b.streamId !== id) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, "CONTINUATION without a header block on its stream");
    b.frames++;
    b.length += p.length;
    if (b.frames > MAX_CONTINUATIONS || b.length > HEADER_BLOCK_MAX) {
      throw new ConnectionError(H2_ERROR.ENHANCE_YOUR_CALM, `a header block of more than ${MAX_CONTINUATIONS} CONTINUATION frames or ${HEADER_BLOCK_MAX} octets`);
    }
    b.parts.push(p);
    if (flags & FLAG.END_HEADERS) this.#blockDone();
  }

  #blockDone(): void {
    const b = this.#block!;
    this.#block = undefined;
    // Decoded first, always: the client's encoder counts on berth's table following every block.
    const { fields } = this.#decoder.decode(b.parts.length === 1 ? b.parts[0]! : Buffer.concat(b.parts));
    const id = b.streamId;
    const open = this.#streams.get(id);
    if (open) { // trailers of a request: they must end it, and carry no pseudo-header
      if (!b.endStream || open.remoteEnded || fields.some((f) => f.name.startsWith(":"))) { this.resetStream(open, H2_ERROR.PROTOCOL_ERROR); return; }
      open.remoteEnded = true;
      open.onEnd?.();
      return;
    }
    if (id % 2 === 0) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, `HEADERS on stream ${id}, which a client may not open`);
    if (id <= this.#lastStreamId) {
      // trailers of a stream berth already closed (the client may not know yet); anything else reuses a closed stream
      if (b.endStream) return;
      throw new ConnectionError(H2_ERROR.STREAM_CLOSED, `HEADERS opening stream ${id}, at or below the last stream ${this.#lastStreamId}`);
    }
    this.#lastStreamId = id;
    const rst = (code: number) => this.#emit(frameHeader(4, FRAME.RST_STREAM, 0, id), u32(code));
    if (this.#goingAway) { rst(H2_ERROR.REFUSED_STREAM); return; }
    let listSize = 0;
    for (const f of fields) listSize += f.name.length + f.value.length + 32;
    if (listSize > MAX_HEADER_LIST_SIZE) { rst(H2_ERROR.ENHANCE_YOUR_CALM); return; }
    if (requestHeaderProblem(fields) !== undefined) { rst(H2_ERROR.PROTOCOL_ERROR); return; }
    if (this.#active >= this.#opts.maxConcurrentStreams) { rst(H2_ERROR.REFUSED_STREAM); return; }
    const headers: Record<string, string> = Object.create(null) as Record<string, string>;
    for (const f of fields) headers[f.name] = headers[f.name] === undefined ? f.value : `${headers[f.name]}, ${f.value}`;
    const st = new H2Stream(this, id);
    this.#streams.set(id, st);
    this.#active++;
    if (b.endStream) st.remoteEnded = true; // before the handler: an answer given at once closes a finished exchange
    this.#handlers.stream(st, headers);
    if (b.endStream && !st.closed) st.onEnd?.();
  }

  #settings(flags: number, id: number, p: Buffer): void {
    if (id !== 0) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, "SETTINGS on a stream");
    if (flags & FLAG.ACK) {
      if (p.length) throw new ConnectionError(H2_ERROR.FRAME_SIZE_ERROR, "a SETTINGS ACK with a payload");
      return;
    }
    if (p.length % 6) throw new ConnectionError(H2_ERROR.FRAME_SIZE_ERROR, `SETTINGS of ${p.length} octets`);
    if (p.length / 6 > MAX_SETTINGS) throw new ConnectionError(H2_ERROR.ENHANCE_YOUR_CALM, `SETTINGS with ${p.length / 6} entries (the limit is ${MAX_SETTINGS})`);
    if (++this.#settingsFrames > MAX_SETTINGS_FRAMES) throw new ConnectionError(H2_ERROR.ENHANCE_YOUR_CALM, `more than ${MAX_SETTINGS_FRAMES} SETTINGS frames`);
    const windowBefore = this.#peerInitialWindow;
    for (let o = 0; o < p.length; o += 6) {
      const key = p.readUInt16BE(o);
      const v = p.readUInt32BE(o + 2);
      if (key === SETTING.ENABLE_PUSH && v > 1) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, `SETTINGS_ENABLE_PUSH ${v}`);
      // A stream's window is the initial window plus its own credit, so a change costs nothing per stream.
      if (key === SETTING.INITIAL_WINDOW_SIZE) {
        if (v > MAX_WINDOW) throw new ConnectionError(H2_ERROR.FLOW_CONTROL_ERROR, `SETTINGS_INITIAL_WINDOW_SIZE ${v}`);
        this.#peerInitialWindow = v;
      }
      if (key === SETTING.MAX_FRAME_SIZE) {
        if (v < 16_384 || v > 16_777_215) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, `SETTINGS_MAX_FRAME_SIZE ${v}`);
        this.#peerMaxFrame = v;
      }
      // berth's responses use no dynamic table; a size update to 0 tells the client's decoder so
      if (key === SETTING.HEADER_TABLE_SIZE) this.#tableSizeUpdate = true;
      // the others are advisory
    }
    this.#emit(frameHeader(0, FRAME.SETTINGS, FLAG.ACK, 0));
    if (this.#peerInitialWindow > windowBefore && this.#blocked.size) {
      // every stream's window grew: the blocked ones may send again (at most MAX_SETTINGS_FRAMES times a connection)
      for (const st of this.#blocked) this.#sending.add(st);
      this.#blocked.clear();
      this.pump();
    }
  }

  #windowUpdate(id: number, p: Buffer): void {
    if (p.length !== 4) throw new ConnectionError(H2_ERROR.FRAME_SIZE_ERROR, `WINDOW_UPDATE of ${p.length} octets`);
    const inc = p.readUInt32BE(0) & 0x7fffffff;
    if (id === 0) {
      if (inc === 0) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, "a WINDOW_UPDATE of 0 on the connection");
      const wasShut = this.#sendWindow <= 0;
      this.#sendWindow += inc;
      if (this.#sendWindow > MAX_WINDOW) throw new ConnectionError(H2_ERROR.FLOW_CONTROL_ERROR, "the connection's window over 2^31-1");
      if (wasShut && this.#sending.size) this.pump(); // otherwise nothing waited for it
    } else {
      if (id > this.#lastStreamId) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, `WINDOW_UPDATE on idle stream ${id}`);
      const st = this.#streams.get(id);
      if (!st) return;
      if (inc === 0) { this.resetStream(st, H2_ERROR.PROTOCOL_ERROR); return; }
      st.sendCredit += inc;
      if (this.#peerInitialWindow + st.sendCredit > MAX_WINDOW) { this.resetStream(st, H2_ERROR.FLOW_CONTROL_ERROR); return; }
      if (this.#blocked.has(st) && this.#peerInitialWindow + st.sendCredit > 0) {
        this.#blocked.delete(st);
        this.#sending.add(st);
        this.pump();
      }
    }
  }
}
