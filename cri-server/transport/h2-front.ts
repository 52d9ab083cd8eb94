// A thin per-connection layer between the CRI socket and berth's HTTP/2
// server (Node's nghttp2). gRPC clients built on grpc-go before 1.58 (crictl,
// critest and kubelet of Kubernetes <= 1.28) send the unix socket path as the
// `:authority` pseudo-header, e.g. "/run/berth/berth.sock". nghttp2 refuses
// '/' in an authority and resets every such stream with PROTOCOL_ERROR before
// berth's gRPC server sees it, and Node offers no option to relax that check.
//
// This layer parses the frames the client sends. Every header block is decoded
// with berth's HPACK decoder (which mirrors the client's dynamic table):
// - while no block needed a change, blocks pass byte for byte; once the
//   first block passes unchanged the layer stops decoding ("pipe"): every byte
//   passes as it comes, and only the 9-octet frame headers are read, so the
//   HEADERS/CONTINUATION frame size, CONTINUATION count and block size limits
//   still hold for every later block (no HPACK, no buffering of payloads);
// - when a block's `:authority` holds octets nghttp2 refuses, it is replaced
//   by "localhost" (what newer grpc-go sends on unix sockets), and that block
//   and every later one on the connection is re-encoded with literals that do
//   not touch nghttp2's dynamic table (the client's encoder and nghttp2's
//   decoder no longer share a table once one value differs).
// Everything else passes unchanged, so nghttp2 still checks every frame,
// header and flow-control rule. Malformed HPACK, over-long blocks and
// CONTINUATION floods are turned into a block nghttp2 refuses
// (COMPRESSION_ERROR, GOAWAY); frame-order errors pass through for nghttp2 to
// refuse.
import { Duplex } from "node:stream";
import type { Socket } from "node:net";
import { HpackDecoder, HpackError, encodeWithoutIndexing, type DecodedField } from "./hpack.ts";

export const CLIENT_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

export const FRAME = { DATA: 0, HEADERS: 1, PRIORITY: 2, RST_STREAM: 3, SETTINGS: 4, PUSH_PROMISE: 5, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 } as const;

export interface FrontLimits {
  /** Largest HEADERS/CONTINUATION payload (nghttp2's SETTINGS_MAX_FRAME_SIZE default). */
  maxFrameSize: number;
  /** Largest header block, all fragments together. */
  maxBlockSize: number;
  /** Most CONTINUATION frames after one HEADERS. */
  maxContinuations: number;
  /** Largest decoded header list (name + value + 32 per field). */
  maxHeaderListSize: number;
  /** The HPACK table size berth's HTTP/2 server advertises (nghttp2 default). */
  headerTableSize: number;
}

export const DEFAULT_FRONT_LIMITS: FrontLimits = {
  maxFrameSize: 16_384,
  maxBlockSize: 65_536,
  maxContinuations: 16,
  maxHeaderListSize: 65_536,
  headerTableSize: 4_096,
};

export const AUTHORITY_REPLACEMENT = "localhost";

// The octets nghttp2 accepts in :authority (RFC 3986 authority characters).
const AUTHORITY_OK = new Uint8Array(256);
for (const c of "!$&'()*+,-.0123456789:;=@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]_abcdefghijklmnopqrstuvwxyz~%") AUTHORITY_OK[c.charCodeAt(0)] = 1;

/** True when nghttp2 would refuse this :authority value. */
export function authorityRefused(value: string): boolean {
  for (let i = 0; i < value.length; i++) if (!AUTHORITY_OK[value.charCodeAt(i) & 0xff] || value.charCodeAt(i) > 0xff) return true;
  return false;
}

export function frameHeader(length: number, type: number, flags: number, streamId: number): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId & 0x7fffffff, 5);
  return h;
}

/** "raw": not HTTP/2 at all (nghttp2 refuses it), bytes pass untouched. */
type Mode = "preface" | "frames" | "pipe" | "raw" | "dead";

export interface FrontStats {
  /** Header blocks whose :authority was rewritten. */
  rewritten: number;
  /** Header blocks re-encoded (rewritten or after a rewrite on the same connection). */
  reencoded: number;
}

/**
 * Turns the client-to-server bytes of one connection into what nghttp2 gets.
 * Pure: feed() returns the bytes to forward.
 */
export class ClientFrameFilter {
  private mode: Mode = "preface";
  private translate = false;
  private pending: Buffer[] = [];
  private pendingLength = 0;
  /** Bytes of a non-header frame's payload still to forward as they come. */
  private passRemaining = 0;
  private readonly decoder: HpackDecoder;
  private readonly limits: FrontLimits;
  // the header block being assembled
  private block: { streamId: number; flags: number; priority: Buffer | null; fragments: Buffer[]; size: number; raw: Buffer[]; continuations: number } | null = null;
  /** In pipe mode: the header block whose frames are passing, counted from frame headers only. */
  private counted: { streamId: number; size: number; continuations: number } | null = null;
  readonly stats: FrontStats = { rewritten: 0, reencoded: 0 };
  onRewrite?: (from: string) => void;
  /** Drop the client's first SETTINGS ACK: it answers berth's early SETTINGS, which nghttp2 never sent. */
  private dropAck: boolean;
  private ackDropped = false;

  constructor(limits: FrontLimits = DEFAULT_FRONT_LIMITS, opts: { dropFirstSettingsAck?: boolean } = {}) {
    this.limits = limits;
    this.dropAck = opts.dropFirstSettingsAck ?? false;
    this.decoder = new HpackDecoder({ maxTableSize: limits.headerTableSize, maxHeaderListSize: limits.maxHeaderListSize });
  }

  get state(): Mode { return this.mode; }
  /** The first header block passed unchanged and the first SETTINGS ACK (if one was to go) is gone: nghttp2 can take the socket itself from here. */
  get canStepAside(): boolean { return this.mode === "pipe" && !this.translate && (!this.dropAck || this.ackDropped); }
  /** True once a block was rewritten: every later block is re-encoded here. */
  get translating(): boolean { return this.translate; }
  /** Bytes taken in but not yet returned (an incomplete frame header or header frame). */
  get held(): Buffer { return this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingLength); }
  /** How many they are, without joining them. */
  get heldLength(): number { return this.pendingLength; }

  /** The early SETTINGS ACK: 9 octets, empty, on stream 0. */
  private isFirstAck(length: number, type: number, flags: number, streamId: number): boolean {
    if (!this.dropAck || this.ackDropped || type !== FRAME.SETTINGS || !(flags & FLAG.ACK) || streamId !== 0 || length !== 0) return false;
    this.ackDropped = true;
    return true;
  }

  feed(chunk: Buffer): Buffer[] {
    if (this.mode === "raw") return [chunk];
    if (this.mode === "dead") return [];
    const out: Buffer[] = [];
    this.pending.push(chunk);
    this.pendingLength += chunk.length;
    const buf = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingLength);
    let pos = 0;
    for (;;) {
      const mode = this.mode as Mode; // changes inside the loop
      if (mode === "raw") { if (pos < buf.length) out.push(buf.subarray(pos)); pos = buf.length; break; }
      if (mode === "dead") { pos = buf.length; break; }
      if (mode === "preface") {
        const n = Math.min(buf.length - pos, CLIENT_PREFACE.length);
        if (!buf.subarray(pos, pos + n).equals(CLIENT_PREFACE.subarray(0, n))) { this.mode = "raw"; continue; } // nghttp2 refuses it
        if (n < CLIENT_PREFACE.length) break;
        out.push(buf.subarray(pos, pos + n));
        pos += n;
        this.mode = "frames";
        continue;
      }
      if (this.passRemaining > 0) {
        const n = Math.min(this.passRemaining, buf.length - pos);
        if (n === 0) break;
        out.push(buf.subarray(pos, pos + n));
        pos += n;
        this.passRemaining -= n;
        continue;
      }
      if (buf.length - pos < 9) break;
      const length = buf.readUIntBE(pos, 3);
      const type = buf[pos + 3]!;
      const flags = buf[pos + 4]!;
      const streamId = buf.readUInt32BE(pos + 5) & 0x7fffffff;
      const isHeaderFrame = type === FRAME.HEADERS || type === FRAME.CONTINUATION;
      if (!isHeaderFrame && !this.block && !this.counted && this.isFirstAck(length, type, flags, streamId)) { pos += 9; continue; }
      if (mode === "pipe") {
        if (isHeaderFrame && !this.countHeaderFrame(length, type, flags, streamId)) { this.poison(out, streamId); continue; }
        if (!isHeaderFrame) this.counted = null; // a block cut by another frame: nghttp2 refuses it
        out.push(buf.subarray(pos, pos + 9));
        pos += 9;
        this.passRemaining = length;
        continue;
      }
      if (this.block && type !== FRAME.CONTINUATION) { this.abandonBlock(out); continue; } // nghttp2: PROTOCOL_ERROR
      if (!isHeaderFrame) {
        out.push(buf.subarray(pos, pos + 9));
        pos += 9;
        this.passRemaining = length;
        continue;
      }
      if (length > this.limits.maxFrameSize) { this.poison(out, streamId); continue; }
      if (buf.length - pos < 9 + length) break;
      const frame = buf.subarray(pos, pos + 9 + length);
      pos += 9 + length;
      this.headerFrame(out, frame, type, flags, streamId);
    }
    const rest = buf.subarray(pos);
    this.pending = rest.length ? [Buffer.from(rest)] : [];
    this.pendingLength = rest.length;
    return coalesce(out);
  }

  /** Pipe mode: the limits on one header frame, from its frame header alone. False when one is exceeded. */
  private countHeaderFrame(length: number, type: number, flags: number, streamId: number): boolean {
    if (length > this.limits.maxFrameSize) return false;
    if (type === FRAME.HEADERS) {
      this.counted = flags & FLAG.END_HEADERS ? null : { streamId, size: length, continuations: 0 };
      return true;
    }
    const c = this.counted;
    if (!c || c.streamId !== streamId) return true; // CONTINUATION out of place: nghttp2 refuses it
    c.continuations++;
    c.size += length;
    if (c.continuations > this.limits.maxContinuations || c.size > this.limits.maxBlockSize) return false;
    if (flags & FLAG.END_HEADERS) this.counted = null;
    return true;
  }

  /** Frame-order error: hand nghttp2 the original bytes and step aside. */
  private abandonBlock(out: Buffer[]): void {
    for (const r of this.block!.raw) out.push(r);
    this.block = null;
    this.mode = "pipe";
  }

  /** Our own limit or HPACK error: give nghttp2 a block it must refuse (index 0 is a decoding error). */
  private poison(out: Buffer[], streamId: number): void {
    const sid = streamId % 2 === 1 ? streamId : 1;
    out.push(frameHeader(1, FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, sid), Buffer.from([0x80]));
    this.block = null;
    this.mode = "dead";
  }

  private headerFrame(out: Buffer[], frame: Buffer, type: number, flags: number, streamId: number): void {
    const payload = frame.subarray(9);
    if (type === FRAME.CONTINUATION) {
      const b = this.block;
      if (!b || b.streamId !== streamId) { // CONTINUATION out of place: nghttp2 says PROTOCOL_ERROR
        if (b) this.abandonBlock(out);
        out.push(frame);
        this.mode = "pipe";
        return;
      }
      b.raw.push(frame);
      b.continuations++;
      b.size += payload.length;
      if (b.continuations > this.limits.maxContinuations || b.size > this.limits.maxBlockSize) { this.poison(out, streamId); return; }
      b.fragments.push(payload);
      if (flags & FLAG.END_HEADERS) this.completeBlock(out);
      return;
    }
    // HEADERS
    if (streamId === 0) { out.push(frame); this.mode = "pipe"; return; } // nghttp2: PROTOCOL_ERROR
    let off = 0;
    let end = payload.length;
    if (flags & FLAG.PADDED) {
      if (payload.length < 1 || payload[0]! >= payload.length) { out.push(frame); this.mode = "pipe"; return; }
      end -= payload[0]!;
      off = 1;
    }
    let priority: Buffer | null = null;
    if (flags & FLAG.PRIORITY) {
      if (end - off < 5) { out.push(frame); this.mode = "pipe"; return; }
      priority = payload.subarray(off, off + 5);
      off += 5;
    }
    const fragment = payload.subarray(off, end);
    this.block = { streamId, flags, priority, fragments: [fragment], size: fragment.length, raw: [frame], continuations: 0 };
    if (flags & FLAG.END_HEADERS) this.completeBlock(out);
  }

  private completeBlock(out: Buffer[]): void {
    const b = this.block!;
    this.block = null;
    let fields: DecodedField[];
    try {
      fields = this.decoder.decode(b.fragments.length === 1 ? b.fragments[0]! : Buffer.concat(b.fragments)).fields;
    } catch (err) {
      if (err instanceof HpackError) { this.poison(out, b.streamId); return; }
      throw err;
    }
    let rewrite = false;
    for (const f of fields) {
      if (f.name === ":authority" && authorityRefused(f.value)) {
        this.onRewrite?.(f.value);
        f.value = AUTHORITY_REPLACEMENT;
        rewrite = true;
      }
    }
    if (rewrite) { this.translate = true; this.stats.rewritten++; }
    if (!this.translate) {
      for (const r of b.raw) out.push(r);
      this.mode = "pipe"; // the first block needed nothing: step aside for good
      return;
    }
    this.stats.reencoded++;
    const block = encodeWithoutIndexing(fields);
    const head = b.priority ? Buffer.concat([b.priority, block]) : block;
    const keep = b.flags & (FLAG.END_STREAM | FLAG.PRIORITY);
    const max = this.limits.maxFrameSize;
    if (head.length <= max) {
      out.push(frameHeader(head.length, FRAME.HEADERS, keep | FLAG.END_HEADERS, b.streamId), head);
      return;
    }
    out.push(frameHeader(max, FRAME.HEADERS, keep, b.streamId), head.subarray(0, max));
    for (let p = max; p < head.length; p += max) {
      const part = head.subarray(p, Math.min(head.length, p + max));
      const last = p + max >= head.length;
      out.push(frameHeader(part.length, FRAME.CONTINUATION, last ? FLAG.END_HEADERS : 0, b.streamId), part);
    }
  }
}

/** Joins pieces that sit back to back in one buffer, so passing frames costs one push per chunk, not two per frame. */
function coalesce(out: Buffer[]): Buffer[] {
  if (out.length < 2) return out;
  const joined: Buffer[] = [out[0]!];
  for (let i = 1; i < out.length; i++) {
    const b = out[i]!;
    const prev = joined[joined.length - 1]!;
    if (prev.buffer === b.buffer && prev.byteOffset + prev.length === b.byteOffset) {
      joined[joined.length - 1] = Buffer.from(prev.buffer, prev.byteOffset, prev.length + b.length);
    } else {
      joined.push(b);
    }
  }
  return joined;
}

/**
 * The Duplex the HTTP/2 server gets instead of the socket: client bytes go through a
 * ClientFrameFilter, server bytes go to the socket unchanged.
 */
export class FrontConnection extends Duplex {
  readonly socket: Socket;
  readonly frames: ClientFrameFilter;

  /**
   * `from` continues a connection whose first bytes already went through `from.filter`:
   * `from.initial` is what it returned for them, handed on first.
   */
  constructor(socket: Socket, limits: FrontLimits = DEFAULT_FRONT_LIMITS, from?: { filter: ClientFrameFilter; initial: Buffer[] }) {
    super({ allowHalfOpen: false });
    this.socket = socket;
    this.frames = from?.filter ?? new ClientFrameFilter(limits);
    for (const b of from?.initial ?? []) this.push(b);
    socket.on("data", (chunk: Buffer) => {
      let out: Buffer[];
      try {
        out = this.frames.feed(chunk);
      } catch (err) { // a bug here must cost this connection, not the daemon
        this.destroy(err as Error);
        return;
      }
      let ok = true;
      for (const b of out) ok = this.push(b) && ok;
      if (!ok) socket.pause();
    });
    socket.on("end", () => this.push(null));
    socket.on("error", (err) => this.destroy(err));
    socket.on("close", () => this.destroy());
  }

  // nghttp2 and the HTTP/2 session ask the transport for these
  get remoteAddress(): string | undefined { return this.socket.remoteAddress; }
  get remotePort(): number | undefined { return this.socket.remotePort; }
  get localAddress(): string | undefined { return this.socket.localAddress; }
  get localPort(): number | undefined { return this.socket.localPort; }
  setNoDelay(noDelay?: boolean): this { this.socket.setNoDelay(noDelay); return this; }
  setKeepAlive(enable?: boolean, delay?: number): this { this.socket.setKeepAlive(enable, delay); return this; }
  setTimeout(ms: number, cb?: () => void): this { this.socket.setTimeout(ms, cb); return this; }

  override _read(): void { this.socket.resume(); }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.socket.destroyed) { cb(); return; }
    this.socket.write(chunk, (err) => cb(err ?? null));
  }

  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    if (this.socket.destroyed) { cb(); return; }
    this.socket.cork();
    for (let i = 0; i < chunks.length - 1; i++) this.socket.write(chunks[i]!.chunk);
    this.socket.write(chunks[chunks.length - 1]!.chunk, (err) => cb(err ?? null));
    this.socket.uncork();
  }

  override _final(cb: (err?: Error | null) => void): void { this.socket.end(); cb(); }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.socket.destroy();
    cb(err);
  }
}

/** An empty SETTINGS frame: the server preface berth sends before nghttp2 has a session. */
export const EARLY_SETTINGS = frameHeader(0, FRAME.SETTINGS, 0, 0);

export interface SortLimits {
  /** Longest wait for the first header block (and the early SETTINGS' ACK) before the front takes over. */
  waitMs: number;
  /** Most bytes held while waiting. */
  maxBytes: number;
}

export const DEFAULT_SORT_LIMITS: SortLimits = { waitMs: 250, maxBytes: 256 * 1024 };

/**
 * Decides, per connection, whether nghttp2 can read the socket itself or the front layer must
 * stay in between, from the first header block. grpc-go waits for the server's SETTINGS before
 * its first call, so berth sends an empty SETTINGS at once and, before nghttp2 sees anything,
 * removes the client's ACK of it (nghttp2 ends a connection on an ACK it did not ask for).
 * - "direct": the first block passed unchanged and the ACK is gone: the socket goes to nghttp2
 *   with every byte read so far put back in front of it (Node's session reads what a socket
 *   already buffered). No JavaScript sits on the connection from then on; nghttp2's own
 *   limits hold for later blocks (16384-octet frames; a CONTINUATION flood ends the
 *   connection; both tested in conformance/suite/old-clients.test.ts).
 * - "front": a block was rewritten (an old grpc-go client), the bytes or the wait ran over, or
 *   the ACK had not come by the first block (a client that does not wait for SETTINGS): the
 *   same filter goes on in a FrontConnection, and drops the ACK whenever it comes.
 * A socket that ends or fails while waiting is destroyed.
 */
export function sortConnection(
  socket: Socket,
  handlers: { direct(socket: Socket): void; front(conn: FrontConnection): void; onRewrite?: (from: string) => void; onSorted?: (how: "direct" | "front" | "gone", why: string) => void },
  limits: FrontLimits = DEFAULT_FRONT_LIMITS,
  sort: SortLimits = DEFAULT_SORT_LIMITS,
): void {
  const filter = new ClientFrameFilter(limits, { dropFirstSettingsAck: true });
  if (handlers.onRewrite) filter.onRewrite = handlers.onRewrite;
  const out: Buffer[] = [];
  let size = 0;
  let decided = false;
  const decide = (how: "direct" | "front" | "gone", why: string) => {
    if (decided) return;
    decided = true;
    handlers.onSorted?.(how, why);
    clearTimeout(timer);
    socket.off("data", onData);
    socket.off("end", onGone);
    socket.off("close", onGone);
    if (how === "gone") { socket.destroy(); return; }
    socket.pause();
    if (how === "direct") {
      const held = filter.held;
      const all = held.length ? [...out, held] : out;
      if (all.length) socket.unshift(all.length === 1 ? all[0]! : Buffer.concat(all));
      handlers.direct(socket);
    } else {
      handlers.front(new FrontConnection(socket, limits, { filter, initial: out }));
    }
  };
  const onData = (chunk: Buffer) => {
    let o: Buffer[];
    try {
      o = filter.feed(chunk);
    } catch {
      decide("gone", "filter failed"); // a bug in the filter costs this connection only
      return;
    }
    for (const b of o) { out.push(b); size += b.length; }
    if (filter.canStepAside) decide("direct", "first header block unchanged");
    else if (filter.translating) decide("front", "first header block rewritten");
    else if (filter.state === "pipe") decide("front", "first header block before the SETTINGS ACK");
    else if (filter.state === "raw" || filter.state === "dead") decide("front", `not HTTP/2 or refused (${filter.state})`);
    else if (size + filter.heldLength > sort.maxBytes) decide("front", `more than ${sort.maxBytes} bytes before the first header block`);
  };
  const onGone = () => decide("gone", "client left");
  const timer = setTimeout(() => decide("front", `no header block within ${sort.waitMs} ms`), sort.waitMs);
  socket.on("data", onData);
  socket.once("end", onGone);
  socket.once("close", onGone);
  socket.write(EARLY_SETTINGS);
}
