// A SPDY/3.1 session over one socket: frame parsing, header compression,
// streams as Node Duplexes. No flow-control window is enforced in either
// direction (Kubernetes' Go peers do not send WINDOW_UPDATE reliably);
// backpressure comes from the socket itself. Any malformed frame ends the
// whole session (and only it) with GOAWAY PROTOCOL_ERROR.
//
// The peer is untrusted, so everything it can make us hold is bounded
// (SpdyLimits): the inflated size and pair count of a header block, the size
// of a frame, the number of open streams, the unread bytes buffered per stream
// and per session, and the outbound queue. When the outbound queue is over its
// high-water mark (the peer reads slowly or not at all) input is no longer
// parsed and stream writes wait, so a peer that floods PINGs or unknown stream
// ids while never reading stalls itself instead of growing our memory. Going
// over a hard limit ends the session with GOAWAY and an error naming it.

import { EventEmitter } from "node:events";
import type { Socket } from "node:net";
import { Duplex } from "node:stream";
import {
  type ControlFrame, type HeaderMap, type RawFrame,
  Flag, FrameType, GoawayStatus, HEADER_LEN, MAX_FRAME_PAYLOAD, RstStatus, SPDY_VERSION, SpdyLimitError, SpdyProtocolError,
  dataFrame, decodeHeaderBlock, encodeHeaderBlock, goawayFrame, parseControl,
  pingFrame, rstStreamFrame, splitFrame, synReplyFrame, synStreamFrame,
} from "./frames.ts";
import { HeaderCompressor, HeaderDecompressor } from "./header-zlib.ts";

/** Largest DATA frame we send; small enough to interleave streams fairly. */
const DATA_CHUNK = 32 * 1024;
/** After our GOAWAY and end, how long the peer gets to close its side. */
const CLOSE_GRACE_MS = 10_000;
/** Assumed size of a header frame not yet compressed, for queue accounting. */
const HEADER_FRAME_ESTIMATE = 256;

/** What a peer can make one session hold. */
export interface SpdyLimits {
  /** Largest inflated header block (SYN_STREAM, SYN_REPLY, HEADERS). */
  maxHeaderBytes: number;
  /** Most name/value pairs in one header block. */
  maxHeaderPairs: number;
  /** Largest DATA frame payload accepted. */
  maxDataFrameBytes: number;
  /** Most streams open at once; further SYN_STREAMs are refused (RST_STREAM REFUSED_STREAM). */
  maxStreams: number;
  /** Unread bytes buffered for one stream before it is reset (FLOW_CONTROL_ERROR). */
  maxStreamBufferBytes: number;
  /** Unread bytes buffered for all streams of the session before it is closed. */
  maxSessionBufferBytes: number;
  /** Outbound bytes / frames queued above which input parsing and stream writes pause. */
  outHighWaterBytes: number;
  outHighWaterFrames: number;
  /** Outbound frames / bytes queued at which the session is closed. */
  maxQueuedFrames: number;
  maxQueuedBytes: number;
}

export const DEFAULT_SPDY_LIMITS: Readonly<SpdyLimits> = Object.freeze({
  maxHeaderBytes: 64 * 1024,
  maxHeaderPairs: 256,
  maxDataFrameBytes: 1024 * 1024,
  maxStreams: 128,
  maxStreamBufferBytes: 4 * 1024 * 1024,
  maxSessionBufferBytes: 16 * 1024 * 1024,
  outHighWaterBytes: 256 * 1024,
  outHighWaterFrames: 1024,
  maxQueuedFrames: 8192,
  maxQueuedBytes: 16 * 1024 * 1024,
});

export { SpdyLimitError };

export type HeaderInput = Record<string, string | string[]> | Iterable<[string, string | string[]]>;

const entries = (h: HeaderInput): Iterable<[string, string | string[]]> =>
  Symbol.iterator in h ? h as Iterable<[string, string | string[]]> : Object.entries(h);

export interface SpdyConnectionOptions {
  /** Server sessions accept odd (client) stream ids and open even ones. */
  isServer: boolean;
  /** Close the session after this long without any traffic (0 = never). */
  idleTimeoutMs?: number;
  /** Overrides of DEFAULT_SPDY_LIMITS. */
  limits?: Partial<SpdyLimits>;
}

export class SpdyStream extends Duplex {
  readonly id: number;
  /** Headers of the SYN_STREAM that opened this stream. */
  readonly headers: HeaderMap;
  /** Resolves with the SYN_REPLY headers (streams we opened), rejects if the stream dies first. */
  readonly replied: Promise<HeaderMap>;
  #conn: SpdyConnection;
  #localFin = false;
  #remoteFin = false;
  #resolveReply!: (h: HeaderMap) => void;
  #rejectReply!: (e: Error) => void;
  #replySent = false;

  /** @internal */
  constructor(conn: SpdyConnection, id: number, headers: HeaderMap) {
    super({ allowHalfOpen: true });
    this.#conn = conn;
    this.id = id;
    this.headers = headers;
    this.replied = new Promise((res, rej) => { this.#resolveReply = res; this.#rejectReply = rej; });
    this.replied.catch(() => undefined);
    // A dying session destroys its streams with an error; consumers see it through
    // pipeline / async iteration, and a stream nobody reads must not crash the process.
    this.on("error", () => undefined);
  }

  /** Header value helper. */
  header(name: string): string { return this.headers.get(name.toLowerCase())?.[0] ?? ""; }

  /** Sends SYN_REPLY (server side; once). */
  reply(headers: HeaderInput = {}, fin = false): void {
    if (this.#replySent) return;
    this.#replySent = true;
    if (fin) this.#localFin = true;
    void this.#conn._sendHeaders((block) => synReplyFrame(this.id, fin ? Flag.FIN : 0, block), headers).catch(() => undefined);
  }

  /** Aborts the stream with RST_STREAM. */
  reset(status: number = RstStatus.CANCEL): void {
    if (!this.#localFin || !this.#remoteFin) this.#conn._sendRaw(rstStreamFrame(this.id, status)).catch(() => undefined);
    this.#localFin = this.#remoteFin = true;
    this.destroy();
  }

  override _read(): void { this.#conn._resumeInput(); }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.#localFin) return cb(new Error(`spdy stream ${this.id} is closed for writing`));
    // While the peer is not reading, wait instead of queueing more.
    this.#conn._outputRoom().then(() => {
      if (this.#localFin) throw new Error(`spdy stream ${this.id} is closed for writing`);
      const sends: Promise<void>[] = [];
      for (let off = 0; off < chunk.length; off += DATA_CHUNK) {
        sends.push(this.#conn._sendRaw(dataFrame(this.id, 0, chunk.subarray(off, off + DATA_CHUNK))));
      }
      return Promise.all(sends);
    }).then(() => cb(), cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.#localFin) return cb();
    this.#localFin = true;
    this.#conn._sendRaw(dataFrame(this.id, Flag.FIN, Buffer.alloc(0))).then(() => { cb(); this.#maybeDone(); }, cb);
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    if (!this.#localFin || !this.#remoteFin) {
      this.#localFin = this.#remoteFin = true;
      if (!this.#conn.destroyed) this.#conn._sendRaw(rstStreamFrame(this.id, RstStatus.CANCEL)).catch(() => undefined);
    }
    this.#rejectReply(err ?? new Error(`spdy stream ${this.id} closed`));
    this.#conn._forget(this.id);
    cb(err);
  }

  /** @internal */ _onData(data: Buffer, fin: boolean): boolean {
    if (this.#remoteFin) return false;
    let more = true;
    if (data.length > 0) more = this.push(data);
    if (fin) this._onRemoteFin();
    return more;
  }
  /** @internal */ _onRemoteFin(): void {
    if (this.#remoteFin) return;
    this.#remoteFin = true;
    this.push(null);
    this.#maybeDone();
  }
  /** @internal */ _onReply(h: HeaderMap, fin: boolean): void {
    this.#resolveReply(h);
    if (fin) this._onRemoteFin();
  }
  /** @internal */ _onReset(status: number): void {
    this.#localFin = this.#remoteFin = true;
    this.destroy(new Error(`spdy stream ${this.id} reset by peer (status ${status})`));
  }
  /** @internal */ get _remoteClosed(): boolean { return this.#remoteFin; }
  /** @internal The session is gone: nothing more can be sent; unread data stays readable. */
  _detach(): void {
    this.#localFin = true;
    this.#rejectReply(new Error(`spdy stream ${this.id}: session closed`));
    if (!this.writableEnded) this.end();
  }

  #maybeDone(): void {
    if (this.#localFin && this.#remoteFin) this.#conn._forget(this.id);
  }
}

interface OutItem { produce: () => Buffer | Promise<Buffer>; size: number; resolve: () => void; reject: (e: Error) => void }

export class SpdyConnection extends EventEmitter {
  readonly socket: Socket;
  readonly isServer: boolean;
  #streams = new Map<number, SpdyStream>();
  #nextId: number;
  #lastRemoteId = 0;
  #compressor = new HeaderCompressor();
  #decompressor: HeaderDecompressor;
  #limits: SpdyLimits;
  #in: Buffer = Buffer.alloc(0);
  #inBusy = false;
  #inputEnded = false;
  #out: OutItem[] = [];
  #outBytes = 0;
  #outBusy = false;
  /** Input parsing stopped because the outbound queue is over its high-water mark. */
  #outCongested = false;
  #roomWaiters: (() => void)[] = [];
  #destroyed = false;
  #goawaySent = false;
  #goawayReceived = false;
  #closeError: Error | undefined;

  constructor(socket: Socket, opts: SpdyConnectionOptions) {
    super();
    this.socket = socket;
    this.isServer = opts.isServer;
    this.#limits = { ...DEFAULT_SPDY_LIMITS, ...opts.limits };
    this.#decompressor = new HeaderDecompressor(this.#limits.maxHeaderBytes);
    this.#nextId = opts.isServer ? 2 : 1;
    socket.on("data", (chunk: Buffer) => this.#onSocketData(chunk));
    socket.on("error", (err) => this.destroy(err));
    // On end, frames already received (some may wait for header inflation) are still delivered.
    socket.on("end", () => { this.#inputEnded = true; this.#pumpIn(); });
    socket.on("close", () => { if (!this.#inputEnded) this.destroy(); else this.#pumpIn(); });
    if (opts.idleTimeoutMs && opts.idleTimeoutMs > 0) {
      socket.setTimeout(opts.idleTimeoutMs, () => {
        this.emit("idle");
        this.#fail(new Error(`spdy session idle for ${opts.idleTimeoutMs} ms`), GoawayStatus.OK);
      });
    }
  }

  get destroyed(): boolean { return this.#destroyed; }
  get streamCount(): number { return this.#streams.size; }
  get limits(): Readonly<SpdyLimits> { return this.#limits; }
  /** Outbound frames and bytes waiting for the socket. */
  get queued(): { frames: number; bytes: number } { return { frames: this.#out.length, bytes: this.#outBytes }; }

  /** Opens a stream (client-style SYN_STREAM). */
  openStream(headers: HeaderInput, opts: { fin?: boolean } = {}): SpdyStream {
    if (this.#destroyed) throw new Error("spdy session is closed");
    if (this.#goawayReceived) throw new Error("spdy peer sent goaway; no new streams");
    const id = this.#nextId;
    this.#nextId += 2;
    const h: HeaderMap = new Map();
    for (const [k, v] of entries(headers)) h.set(k.toLowerCase(), Array.isArray(v) ? v : [v]);
    const stream = new SpdyStream(this, id, h);
    this.#streams.set(id, stream);
    void this._sendHeaders((block) => synStreamFrame(id, opts.fin ? Flag.FIN : 0, block), headers).catch(() => undefined);
    if (opts.fin) stream.end();
    return stream;
  }

  /** Sends a PING (the peer echoes it). */
  ping(id?: number): Promise<void> { return this._sendRaw(pingFrame(id ?? this.#nextPingId())); }
  #pingId = 0;
  #nextPingId() { this.#pingId += 2; return this.isServer ? this.#pingId : this.#pingId - 1; }

  /** Graceful close: GOAWAY, then end the socket once queued frames are written. */
  async close(): Promise<void> {
    if (this.#destroyed) return;
    if (!this.#goawaySent) {
      this.#goawaySent = true;
      await this._sendRaw(goawayFrame(this.#lastRemoteId, GoawayStatus.OK)).catch(() => undefined);
    }
    if (!this.#destroyed) {
      this.socket.end();
      // A peer that never closes its side must not pin the socket.
      setTimeout(() => this.destroy(), CLOSE_GRACE_MS).unref();
    }
  }

  destroy(err?: Error): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#closeError = err;
    const closed = new Error(err ? `spdy session closed: ${err.message}` : "spdy session closed");
    // Streams whose peer already finished sending keep their unread data; the rest see an error.
    for (const s of [...this.#streams.values()]) {
      if (s.destroyed) continue;
      if (s._remoteClosed) s._detach();
      else s.destroy(closed);
    }
    this.#streams.clear();
    for (const item of this.#out.splice(0)) item.reject(closed);
    this.#outBytes = 0;
    for (const w of this.#roomWaiters.splice(0)) w();
    this.#compressor.close();
    this.#decompressor.close();
    this.socket.destroy();
    this.emit("close", err);
  }

  /** The error that ended the session, if any. */
  get closeError(): Error | undefined { return this.#closeError; }

  // ---- output ----

  /** @internal Queues a frame; resolves once the socket accepted it (after drain when full). */
  _sendRaw(frame: Buffer): Promise<void> { return this.#enqueue(() => frame, frame.length); }

  /** @internal Resolves once the outbound queue is under its high-water mark (or the session is gone). */
  _outputRoom(): Promise<void> {
    if (!this.#outCongested || this.#destroyed) return Promise.resolve();
    return new Promise((resolve) => this.#roomWaiters.push(resolve));
  }

  /** @internal Compresses a header block and queues the frame built from it, keeping frame order. */
  _sendHeaders(build: (block: Buffer) => Buffer, headers: HeaderInput): Promise<void> {
    const raw = encodeHeaderBlock(entries(headers));
    const compressed = this.#compressor.compress(raw);
    compressed.catch(() => undefined);
    return this.#enqueue(() => compressed.then(build), HEADER_FRAME_ESTIMATE);
  }

  #enqueue(produce: () => Buffer | Promise<Buffer>, size: number): Promise<void> {
    if (this.#destroyed) return Promise.reject(new Error("spdy session is closed"));
    const l = this.#limits;
    if (this.#out.length + 1 > l.maxQueuedFrames || this.#outBytes + size > l.maxQueuedBytes) {
      const err = new SpdyLimitError(`outbound queue over its limit of ${l.maxQueuedFrames} frames or ${l.maxQueuedBytes} bytes (${this.#out.length} frames, ${this.#outBytes} bytes queued): the peer does not read`);
      this.#fail(err, GoawayStatus.INTERNAL_ERROR);
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      this.#out.push({ produce, size, resolve, reject });
      this.#outBytes += size;
      if (!this.#outCongested && (this.#outBytes > l.outHighWaterBytes || this.#out.length > l.outHighWaterFrames)) {
        // Stop reading: what the peer sends next would only queue more answers.
        this.#outCongested = true;
        this.#flow();
      }
      if (!this.#outBusy) void this.#pumpOut();
    });
  }

  /** The queue went down: let input parsing and waiting writers go on. */
  #outDrained(): void {
    const l = this.#limits;
    if (!this.#outCongested || this.#outBytes > l.outHighWaterBytes / 2 || this.#out.length > l.outHighWaterFrames / 2) return;
    this.#outCongested = false;
    this.#flow();
    for (const w of this.#roomWaiters.splice(0)) w();
    this.#pumpIn();
  }

  async #pumpOut(): Promise<void> {
    this.#outBusy = true;
    try {
      while (this.#out.length > 0 && !this.#destroyed) {
        const item = this.#out.shift()!;
        try {
          let buf = item.produce();
          if (buf instanceof Promise) buf = await buf;
          if (this.#destroyed) throw new Error("spdy session is closed");
          const more = this.socket.write(buf);
          this.#outBytes -= item.size;
          if (!more) await this.#drained();
          item.resolve();
          this.#outDrained();
        } catch (err) {
          item.reject(err as Error);
          if (err instanceof SpdyProtocolError) this.#fail(err, GoawayStatus.INTERNAL_ERROR);
        }
      }
    } finally {
      this.#outBusy = false;
    }
  }

  #drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => { this.socket.off("drain", done); this.off("close", done); resolve(); };
      this.socket.on("drain", done);
      this.once("close", done);
    });
  }

  // ---- input ----

  /** A stream's reader is behind. */
  #paused = false;
  #socketPaused = false;
  /** Reads from the socket only while nothing downstream is behind. */
  #flow(): void {
    if (this.#destroyed) return;
    const stop = this.#paused || this.#outCongested || this.#inBusy;
    if (stop === this.#socketPaused) return;
    this.#socketPaused = stop;
    if (stop) this.socket.pause(); else this.socket.resume();
  }
  /** @internal A stream's reader wants more: resume the socket if we paused it. */
  _resumeInput(): void {
    if (this.#paused && !this.#destroyed) {
      this.#paused = false;
      this.#flow();
    }
  }

  /** @internal */
  _forget(id: number): void { this.#streams.delete(id); }

  #onSocketData(chunk: Buffer): void {
    this.#in = this.#in.length === 0 ? chunk : Buffer.concat([this.#in, chunk]);
    this.#pumpIn();
  }

  /** Refuses a frame by its header, before its payload is buffered. */
  #checkFrameSize(buf: Buffer): void {
    if (buf.length < HEADER_LEN) return;
    const length = buf.readUIntBE(5, 3);
    const control = (buf[0]! & 0x80) !== 0;
    const l = this.#limits;
    // A compressed header block is at most a little larger than its inflated size.
    const max = control ? l.maxHeaderBytes + 1024 : l.maxDataFrameBytes;
    if (length > max) {
      throw new SpdyLimitError(`${control ? "control" : "data"} frame of ${length} bytes is over the limit of ${max} bytes`);
    }
  }

  #pumpIn(): void {
    while (!this.#inBusy && !this.#destroyed && !this.#outCongested) {
      let split: { frame: RawFrame; size: number } | undefined;
      try {
        this.#checkFrameSize(this.#in);
        split = splitFrame(this.#in);
      } catch (err) {
        return this.#fail(err as Error, GoawayStatus.PROTOCOL_ERROR);
      }
      if (!split) {
        if (this.#inputEnded) this.destroy();
        return;
      }
      this.#in = this.#in.subarray(split.size);
      let r: void | Promise<void>;
      try {
        r = this.#onFrame(split.frame);
      } catch (err) {
        return this.#fail(err as Error, GoawayStatus.PROTOCOL_ERROR);
      }
      if (r instanceof Promise) {
        // Frames after a header block wait for its inflation: stop reading meanwhile so they cannot pile up.
        this.#inBusy = true;
        this.#flow();
        r.then(() => { this.#inBusy = false; this.#flow(); this.#pumpIn(); }, (err: Error) => this.#fail(err, GoawayStatus.PROTOCOL_ERROR));
        return;
      }
    }
  }

  #fail(err: Error, status: number): void {
    if (this.#destroyed) return;
    this.emit("protocolError", err);
    if (err instanceof SpdyLimitError) this.emit("limit", err);
    if (!this.#goawaySent) {
      this.#goawaySent = true;
      // Best effort: write GOAWAY directly, then tear down.
      try { this.socket.write(goawayFrame(this.#lastRemoteId, status)); } catch { /* socket gone */ }
    }
    this.destroy(err);
  }

  #onFrame(f: RawFrame): void | Promise<void> {
    if (!f.control) return this.#onData(f.streamId, f.flags, f.payload);
    if (f.version !== SPDY_VERSION) throw new SpdyProtocolError(`unsupported spdy version ${f.version}`);
    if (f.payload.length > MAX_FRAME_PAYLOAD) throw new SpdyProtocolError("control frame too large");
    const c = parseControl(f.type, f.flags, f.payload);
    return this.#onControl(c);
  }

  #onData(id: number, flags: number, payload: Buffer): void {
    if (id === 0) throw new SpdyProtocolError("data frame on stream 0");
    const s = this.#streams.get(id);
    if (!s) {
      this.#sendRst(id, RstStatus.INVALID_STREAM);
      return;
    }
    if (s._remoteClosed) {
      this.#sendRst(id, RstStatus.STREAM_ALREADY_CLOSED);
      return;
    }
    const more = s._onData(payload, (flags & Flag.FIN) !== 0);
    if (more) return;
    const l = this.#limits;
    if (s.readableLength > l.maxStreamBufferBytes) {
      this.emit("limit", new SpdyLimitError(`stream ${id} has ${s.readableLength} unread bytes, over the limit of ${l.maxStreamBufferBytes}`));
      s.reset(RstStatus.FLOW_CONTROL_ERROR);
      // The stream that held input back is gone; a reader still behind pauses it again on its next push.
      this.#paused = false;
      this.#flow();
      return;
    }
    let unread = 0;
    for (const st of this.#streams.values()) unread += st.readableLength;
    if (unread > l.maxSessionBufferBytes) {
      throw new SpdyLimitError(`session has ${unread} unread bytes across its streams, over the limit of ${l.maxSessionBufferBytes}`);
    }
    if (!this.#paused) { this.#paused = true; this.#flow(); }
  }

  #sendRst(id: number, status: number) { this._sendRaw(rstStreamFrame(id, status)).catch(() => undefined); }

  #headers(block: Buffer): Promise<HeaderMap> {
    return this.#decompressor.decompress(block).then((raw) => raw.length === 0 ? new Map() : decodeHeaderBlock(raw, this.#limits.maxHeaderPairs));
  }

  #onControl(c: ControlFrame): void | Promise<void> {
    switch (c.type) {
      case FrameType.SYN_STREAM:
        return this.#headers(c.block).then((h) => this.#onSynStream(c.streamId, c.flags, h));
      case FrameType.SYN_REPLY:
        return this.#headers(c.block).then((h) => {
          const s = this.#streams.get(c.streamId);
          if (s) s._onReply(h, (c.flags & Flag.FIN) !== 0);
        });
      case FrameType.HEADERS:
        return this.#headers(c.block).then((h) => {
          const s = this.#streams.get(c.streamId);
          if (s) { s.emit("headers", h); if (c.flags & Flag.FIN) s._onRemoteFin(); }
        });
      case FrameType.RST_STREAM: {
        this.#streams.get(c.streamId)?._onReset(c.status);
        return;
      }
      case FrameType.PING: {
        const fromPeer = (c.id % 2 === 1) === this.isServer;
        if (fromPeer) this._sendRaw(pingFrame(c.id)).catch(() => undefined);
        else this.emit("pong", c.id);
        return;
      }
      case FrameType.GOAWAY:
        this.#goawayReceived = true;
        this.emit("goaway", c.lastGoodStreamId, c.status);
        return;
      case FrameType.SETTINGS:
        this.emit("settings", c.entries);
        return;
      case FrameType.WINDOW_UPDATE:
        return; // no send window is enforced
      default:
        return; // unknown control frames are ignored (spec)
    }
  }

  #onSynStream(id: number, flags: number, h: HeaderMap): void {
    const expectOdd = this.isServer;
    if (id === 0 || (id % 2 === 1) !== expectOdd) throw new SpdyProtocolError(`syn_stream with invalid stream id ${id}`);
    if (this.#streams.has(id)) { this.#sendRst(id, RstStatus.STREAM_IN_USE); return; }
    if (id <= this.#lastRemoteId) throw new SpdyProtocolError(`syn_stream id ${id} is not above ${this.#lastRemoteId}`);
    this.#lastRemoteId = id;
    if (this.#goawaySent) { this.#sendRst(id, RstStatus.REFUSED_STREAM); return; }
    if (this.#streams.size >= this.#limits.maxStreams) {
      this.emit("limit", new SpdyLimitError(`stream ${id} refused: ${this.#streams.size} streams are open, the limit is ${this.#limits.maxStreams}`));
      this.#sendRst(id, RstStatus.REFUSED_STREAM);
      return;
    }
    const s = new SpdyStream(this, id, h);
    this.#streams.set(id, s);
    if (flags & Flag.FIN) s._onRemoteFin();
    this.emit("stream", s);
  }
}
