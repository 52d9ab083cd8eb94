// SPDY/3.1 frame codec (pure). Control frames: C bit, version 3, type, flags,
// 24-bit length. Data frames: stream id, flags, 24-bit length. Header blocks
// are encoded here uncompressed; header-zlib.ts compresses them.

export const SPDY_VERSION = 3;

export const FrameType = {
  SYN_STREAM: 1,
  SYN_REPLY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  HEADERS: 8,
  WINDOW_UPDATE: 9,
} as const;

export const Flag = { FIN: 0x01, UNIDIRECTIONAL: 0x02 } as const;

export const RstStatus = {
  PROTOCOL_ERROR: 1,
  INVALID_STREAM: 2,
  REFUSED_STREAM: 3,
  CANCEL: 5,
  INTERNAL_ERROR: 6,
  FLOW_CONTROL_ERROR: 7,
  STREAM_IN_USE: 8,
  STREAM_ALREADY_CLOSED: 9,
} as const;

export const GoawayStatus = { OK: 0, PROTOCOL_ERROR: 1, INTERNAL_ERROR: 2 } as const;

/** Headers with lower-case names; multiple values are kept in order. */
export type HeaderMap = Map<string, string[]>;

export class SpdyProtocolError extends Error {
  constructor(message: string) { super(message); this.name = "SpdyProtocolError"; }
}

/** A peer went over one of the session's limits (sizes, counts, buffers). */
export class SpdyLimitError extends SpdyProtocolError {
  constructor(message: string) { super(message); this.name = "SpdyLimitError"; }
}

export const HEADER_LEN = 8;
export const MAX_FRAME_PAYLOAD = 0xffffff;

/** A frame split off the wire: control frames keep their payload raw. */
export type RawFrame =
  | { control: true; version: number; type: number; flags: number; payload: Buffer }
  | { control: false; streamId: number; flags: number; payload: Buffer };

/** Returns the frame at the start of buf and its total size, or undefined when more bytes are needed. */
export function splitFrame(buf: Buffer): { frame: RawFrame; size: number } | undefined {
  if (buf.length < HEADER_LEN) return undefined;
  const length = buf.readUIntBE(5, 3);
  const size = HEADER_LEN + length;
  if (buf.length < size) return undefined;
  const flags = buf[4]!;
  const payload = buf.subarray(HEADER_LEN, size);
  const first = buf.readUInt32BE(0);
  if (first & 0x80000000) {
    return { frame: { control: true, version: (first >>> 16) & 0x7fff, type: first & 0xffff, flags, payload }, size };
  }
  return { frame: { control: false, streamId: first & 0x7fffffff, flags, payload }, size };
}

function header(first: number, flags: number, length: number): Buffer {
  if (length > MAX_FRAME_PAYLOAD) throw new SpdyProtocolError(`frame payload of ${length} bytes is too large`);
  const h = Buffer.alloc(HEADER_LEN);
  h.writeUInt32BE(first >>> 0, 0);
  h.writeUInt32BE(((flags & 0xff) << 24 | length) >>> 0, 4);
  return h;
}

export function controlFrame(type: number, flags: number, payload: Buffer): Buffer {
  return Buffer.concat([header((0x80000000 | (SPDY_VERSION << 16) | type) >>> 0, flags, payload.length), payload]);
}

export function dataFrame(streamId: number, flags: number, data: Buffer): Buffer {
  return Buffer.concat([header(streamId & 0x7fffffff, flags, data.length), data]);
}

const u32 = (...values: number[]) => {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => b.writeUInt32BE(v >>> 0, i * 4));
  return b;
};

/** SYN_STREAM payload; `block` is the compressed header block. */
export function synStreamFrame(streamId: number, flags: number, block: Buffer, priority = 0, associatedId = 0): Buffer {
  const fixed = Buffer.alloc(10);
  fixed.writeUInt32BE(streamId & 0x7fffffff, 0);
  fixed.writeUInt32BE(associatedId & 0x7fffffff, 4);
  fixed[8] = (priority & 0x7) << 5;
  fixed[9] = 0;
  return controlFrame(FrameType.SYN_STREAM, flags, Buffer.concat([fixed, block]));
}

export const synReplyFrame = (streamId: number, flags: number, block: Buffer) =>
  controlFrame(FrameType.SYN_REPLY, flags, Buffer.concat([u32(streamId & 0x7fffffff), block]));
export const headersFrame = (streamId: number, flags: number, block: Buffer) =>
  controlFrame(FrameType.HEADERS, flags, Buffer.concat([u32(streamId & 0x7fffffff), block]));
export const rstStreamFrame = (streamId: number, status: number) =>
  controlFrame(FrameType.RST_STREAM, 0, u32(streamId & 0x7fffffff, status));
export const pingFrame = (id: number) => controlFrame(FrameType.PING, 0, u32(id));
export const goawayFrame = (lastGoodStreamId: number, status: number) =>
  controlFrame(FrameType.GOAWAY, 0, u32(lastGoodStreamId & 0x7fffffff, status));
export const windowUpdateFrame = (streamId: number, delta: number) =>
  controlFrame(FrameType.WINDOW_UPDATE, 0, u32(streamId & 0x7fffffff, delta & 0x7fffffff));

export function settingsFrame(entries: { id: number; value: number; flags?: number }[], flags = 0): Buffer {
  const b = Buffer.alloc(4 + entries.length * 8);
  b.writeUInt32BE(entries.length, 0);
  entries.forEach((e, i) => {
    b.writeUInt32BE((((e.flags ?? 0) & 0xff) << 24 | (e.id & 0xffffff)) >>> 0, 4 + i * 8);
    b.writeUInt32BE(e.value >>> 0, 8 + i * 8);
  });
  return controlFrame(FrameType.SETTINGS, flags, b);
}

/** Decoded control frame payloads (header blocks still compressed). */
export type ControlFrame =
  | { type: typeof FrameType.SYN_STREAM; flags: number; streamId: number; associatedId: number; priority: number; block: Buffer }
  | { type: typeof FrameType.SYN_REPLY; flags: number; streamId: number; block: Buffer }
  | { type: typeof FrameType.HEADERS; flags: number; streamId: number; block: Buffer }
  | { type: typeof FrameType.RST_STREAM; flags: number; streamId: number; status: number }
  | { type: typeof FrameType.SETTINGS; flags: number; entries: { id: number; value: number; flags: number }[] }
  | { type: typeof FrameType.PING; flags: number; id: number }
  | { type: typeof FrameType.GOAWAY; flags: number; lastGoodStreamId: number; status: number }
  | { type: typeof FrameType.WINDOW_UPDATE; flags: number; streamId: number; delta: number }
  | { type: "unknown"; flags: number; frameType: number };

function need(p: Buffer, n: number, what: string) {
  if (p.length < n) throw new SpdyProtocolError(`${what} frame is ${p.length} bytes, needs at least ${n}`);
}

/** Parses a control frame's payload; throws SpdyProtocolError when malformed. */
export function parseControl(type: number, flags: number, p: Buffer): ControlFrame {
  switch (type) {
    case FrameType.SYN_STREAM:
      need(p, 10, "syn_stream");
      return { type, flags, streamId: p.readUInt32BE(0) & 0x7fffffff, associatedId: p.readUInt32BE(4) & 0x7fffffff, priority: p[8]! >> 5, block: p.subarray(10) };
    case FrameType.SYN_REPLY:
      need(p, 4, "syn_reply");
      return { type, flags, streamId: p.readUInt32BE(0) & 0x7fffffff, block: p.subarray(4) };
    case FrameType.HEADERS:
      need(p, 4, "headers");
      return { type, flags, streamId: p.readUInt32BE(0) & 0x7fffffff, block: p.subarray(4) };
    case FrameType.RST_STREAM:
      need(p, 8, "rst_stream");
      return { type, flags, streamId: p.readUInt32BE(0) & 0x7fffffff, status: p.readUInt32BE(4) };
    case FrameType.SETTINGS: {
      need(p, 4, "settings");
      const n = p.readUInt32BE(0);
      if (p.length !== 4 + n * 8) throw new SpdyProtocolError(`settings frame declares ${n} entries but is ${p.length} bytes`);
      const entries = [];
      for (let i = 0; i < n; i++) {
        const w = p.readUInt32BE(4 + i * 8);
        entries.push({ flags: w >>> 24, id: w & 0xffffff, value: p.readUInt32BE(8 + i * 8) });
      }
      return { type, flags, entries };
    }
    case FrameType.PING:
      if (p.length !== 4) throw new SpdyProtocolError(`ping frame is ${p.length} bytes, must be 4`);
      return { type, flags, id: p.readUInt32BE(0) };
    case FrameType.GOAWAY:
      need(p, 4, "goaway");
      return { type, flags, lastGoodStreamId: p.readUInt32BE(0) & 0x7fffffff, status: p.length >= 8 ? p.readUInt32BE(4) : 0 };
    case FrameType.WINDOW_UPDATE:
      if (p.length !== 8) throw new SpdyProtocolError(`window_update frame is ${p.length} bytes, must be 8`);
      return { type, flags, streamId: p.readUInt32BE(0) & 0x7fffffff, delta: p.readUInt32BE(4) & 0x7fffffff };
    default:
      return { type: "unknown", flags, frameType: type };
  }
}

/** Encodes a name/value header block (uncompressed); names are lower-cased, multiple values NUL-joined. */
export function encodeHeaderBlock(headers: Iterable<[string, string | string[]]>): Buffer {
  const parts: Buffer[] = [];
  let count = 0;
  for (const [name, value] of headers) {
    const n = Buffer.from(name.toLowerCase(), "utf8");
    const v = Buffer.from(Array.isArray(value) ? value.join("\0") : value, "utf8");
    parts.push(u32(n.length), n, u32(v.length), v);
    count++;
  }
  return Buffer.concat([u32(count), ...parts]);
}

/** Decodes a name/value header block; throws SpdyProtocolError when malformed or with more than `maxPairs` pairs. */
export function decodeHeaderBlock(b: Buffer, maxPairs = 256): HeaderMap {
  const out: HeaderMap = new Map();
  if (b.length < 4) throw new SpdyProtocolError("header block is shorter than 4 bytes");
  const count = b.readUInt32BE(0);
  if (count > maxPairs) throw new SpdyLimitError(`header block has ${count} name/value pairs, over the limit of ${maxPairs}`);
  let off = 4;
  const take = (what: string) => {
    if (off + 4 > b.length) throw new SpdyProtocolError(`header block truncated in ${what} length`);
    const len = b.readUInt32BE(off);
    off += 4;
    if (off + len > b.length) throw new SpdyProtocolError(`header block truncated in ${what}`);
    const s = b.subarray(off, off + len).toString("utf8");
    off += len;
    return s;
  };
  for (let i = 0; i < count; i++) {
    const name = take("name");
    if (name.length === 0) throw new SpdyProtocolError("header block has an empty name");
    const value = take("value");
    const key = name.toLowerCase();
    const list = out.get(key) ?? [];
    list.push(...value.split("\0"));
    out.set(key, list);
  }
  if (off !== b.length) throw new SpdyProtocolError(`header block has ${b.length - off} trailing bytes`);
  return out;
}

/** The first value of a header, or "". */
export const headerValue = (h: HeaderMap, name: string): string => h.get(name.toLowerCase())?.[0] ?? "";
