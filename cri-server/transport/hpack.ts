// HPACK (RFC 7541) for berth's HTTP/2 (h2.ts): a decoder that mirrors the
// dynamic table a client's encoder keeps, and an encoder that writes header
// blocks representation by representation (berth's responses, without
// indexing, and what the replay tests use to reproduce a client's exact bytes).
// Header names and values are latin1 strings: one char per octet, so any byte
// sequence survives a round trip.
import { HUFFMAN_CODES, HUFFMAN_EOS_LENGTH, HUFFMAN_LENGTHS } from "./huffman-table.ts";

export class HpackError extends Error {}

/** RFC 7541 Appendix A; index 1 is STATIC_TABLE[0]. */
export const STATIC_TABLE: readonly (readonly [string, string])[] = [
  [":authority", ""], [":method", "GET"], [":method", "POST"], [":path", "/"],
  [":path", "/index.html"], [":scheme", "http"], [":scheme", "https"], [":status", "200"],
  [":status", "204"], [":status", "206"], [":status", "304"], [":status", "400"],
  [":status", "404"], [":status", "500"], ["accept-charset", ""], ["accept-encoding", "gzip, deflate"],
  ["accept-language", ""], ["accept-ranges", ""], ["accept", ""], ["access-control-allow-origin", ""],
  ["age", ""], ["allow", ""], ["authorization", ""], ["cache-control", ""],
  ["content-disposition", ""], ["content-encoding", ""], ["content-language", ""], ["content-length", ""],
  ["content-location", ""], ["content-range", ""], ["content-type", ""], ["cookie", ""],
  ["date", ""], ["etag", ""], ["expect", ""], ["expires", ""],
  ["from", ""], ["host", ""], ["if-match", ""], ["if-modified-since", ""],
  ["if-none-match", ""], ["if-range", ""], ["if-unmodified-since", ""], ["last-modified", ""],
  ["link", ""], ["location", ""], ["max-forwards", ""], ["proxy-authenticate", ""],
  ["proxy-authorization", ""], ["range", ""], ["referer", ""], ["refresh", ""],
  ["retry-after", ""], ["server", ""], ["set-cookie", ""], ["strict-transport-security", ""],
  ["transfer-encoding", ""], ["user-agent", ""], ["vary", ""], ["via", ""],
  ["www-authenticate", ""],
];

const STATIC_NAME_INDEX = new Map<string, number>();
STATIC_TABLE.forEach(([name], i) => { if (!STATIC_NAME_INDEX.has(name)) STATIC_NAME_INDEX.set(name, i + 1); });

/** The first static-table index whose name is `name`, or 0. */
export function staticNameIndex(name: string): number {
  return STATIC_NAME_INDEX.get(name) ?? 0;
}

// ---- integers (RFC 7541 5.1) ----

/** Largest integer accepted in a representation: more than any table size or string length berth allows. */
const MAX_INTEGER = 2 ** 28;

export function decodeInteger(buf: Uint8Array, pos: number, prefixBits: number): [value: number, next: number] {
  if (pos >= buf.length) throw new HpackError("header block ends inside an integer");
  const max = (1 << prefixBits) - 1;
  let value = buf[pos]! & max;
  pos++;
  if (value < max) return [value, pos];
  let shift = 0;
  for (;;) {
    if (pos >= buf.length) throw new HpackError("header block ends inside an integer");
    const b = buf[pos++]!;
    // More than 28 bits of continuation (even 0x80 padding) is refused: left unchecked,
    // 2 ** shift reaches Infinity and the value NaN, which passes every "> limit" test.
    if (shift > 28) throw new HpackError(`HPACK integer exceeds ${MAX_INTEGER} (too many continuation octets)`);
    value += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if (!Number.isSafeInteger(value) || value > MAX_INTEGER) throw new HpackError(`HPACK integer exceeds ${MAX_INTEGER}`);
    if ((b & 0x80) === 0) return [value, pos];
  }
}

export function encodeInteger(out: number[], firstByteBits: number, prefixBits: number, value: number): void {
  const max = (1 << prefixBits) - 1;
  if (value < max) { out.push(firstByteBits | value); return; }
  out.push(firstByteBits | max);
  value -= max;
  while (value >= 0x80) { out.push((value % 0x80) | 0x80); value = Math.floor(value / 0x80); }
  out.push(value);
}

// ---- Huffman (RFC 7541 5.2, Appendix B) ----

// Decoding trie: node n has children at TRIE[2n] (bit 0) and TRIE[2n+1] (bit 1);
// a child >= 0 is a node, a child < 0 is the leaf for symbol -(child + 1).
const TRIE: Int32Array = (() => {
  const t: number[] = [0, 0];
  let nodes = 1;
  const add = (code: number, len: number, sym: number) => {
    let n = 0;
    for (let i = len - 1; i >= 0; i--) {
      const bit = (code >>> i) & 1;
      const slot = 2 * n + bit;
      if (i === 0) { t[slot] = -(sym + 1); break; }
      if (t[slot] === 0) { t[slot] = nodes; t.push(0, 0); nodes++; }
      n = t[slot]!;
    }
  };
  for (let s = 0; s < 256; s++) add(HUFFMAN_CODES[s]!, HUFFMAN_LENGTHS[s]!, s);
  add(0x3fffffff, HUFFMAN_EOS_LENGTH, 256);
  return Int32Array.from(t);
})();

export function huffmanDecode(src: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(Math.ceil((src.length * 8) / 5));
  let o = 0;
  let node = 0;
  let depth = 0; // bits consumed since the last symbol
  let allOnes = true; // those bits were all 1 (a prefix of EOS)
  for (let i = 0; i < src.length; i++) {
    const byte = src[i]!;
    for (let b = 7; b >= 0; b--) {
      const bit = (byte >>> b) & 1;
      const next = TRIE[2 * node + bit]!;
      depth++;
      if (bit === 0) allOnes = false;
      if (next < 0) {
        const sym = -next - 1;
        if (sym === 256) throw new HpackError("Huffman string contains EOS");
        out[o++] = sym;
        node = 0; depth = 0; allOnes = true;
      } else {
        node = next;
      }
    }
  }
  if (depth > 7) throw new HpackError("Huffman padding longer than 7 bits");
  if (!allOnes) throw new HpackError("Huffman padding is not a prefix of EOS");
  return out.subarray(0, o);
}

export function huffmanEncodedLength(src: Uint8Array): number {
  let bits = 0;
  for (let i = 0; i < src.length; i++) bits += HUFFMAN_LENGTHS[src[i]!]!;
  return Math.ceil(bits / 8);
}

export function huffmanEncode(src: Uint8Array): Buffer {
  const out = Buffer.alloc(huffmanEncodedLength(src));
  let o = 0;
  let cur = 0; // pending bits of the current octet
  let n = 0;
  for (let i = 0; i < src.length; i++) {
    const len = HUFFMAN_LENGTHS[src[i]!]!;
    const code = HUFFMAN_CODES[src[i]!]!;
    for (let bit = len - 1; bit >= 0; bit--) {
      cur = (cur << 1) | ((code >>> bit) & 1);
      if (++n === 8) { out[o++] = cur; cur = 0; n = 0; }
    }
  }
  if (n > 0) out[o++] = ((cur << (8 - n)) | ((1 << (8 - n)) - 1)) & 0xff;
  return out;
}

const latin1 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString("latin1");

/**
 * Short Huffman-coded strings already decoded, by their coded octets: a client sends the same
 * few again and again (grpc-js codes every request's :path as a literal, grpc-go a new
 * grpc-timeout now and then), and decoding them bit by bit was a tenth of berthd's CPU per
 * Version call. Keyed by the coded octets as a string, so an entry holds two short strings and
 * no buffer (a copy of the octets would be a slice of Node's 64 KiB buffer pool, and keep it
 * alive); at most HUFFMAN_CACHE_ENTRIES, emptied when full, so a client sending ever new
 * strings only refills it.
 */
const HUFFMAN_CACHE_OCTETS = 64;
const HUFFMAN_CACHE_ENTRIES = 256;
const huffmanCache = new Map<string, string>();

function huffmanCached(raw: Uint8Array): string {
  const key = latin1(raw);
  const hit = huffmanCache.get(key);
  if (hit !== undefined) return hit;
  const value = latin1(huffmanDecode(raw)); // throws on a malformed string: nothing is kept
  if (huffmanCache.size >= HUFFMAN_CACHE_ENTRIES) huffmanCache.clear();
  huffmanCache.set(key, value);
  return value;
}

/** Entries in the decoded-string cache (for tests). */
export const huffmanCacheSize = (): number => huffmanCache.size;

// ---- header blocks ----

export type Indexing = "incremental" | "without" | "never";

/** One field as it appeared on the wire: its name, value and how it was represented. */
export interface DecodedField {
  name: string;
  value: string;
  /** "indexed" for a fully indexed field; otherwise the literal kind. */
  representation: "indexed" | Indexing;
  /** The table index used (for the field, or for the name of a literal); 0 when the name was a literal. */
  index: number;
  nameHuffman: boolean;
  valueHuffman: boolean;
}

export interface DecodedBlock {
  fields: DecodedField[];
  /** Dynamic table size updates at the start of the block, in order. */
  sizeUpdates: number[];
}

interface Entry { name: string; value: string; size: number }

export interface HpackDecoderLimits {
  /** SETTINGS_HEADER_TABLE_SIZE the peer's encoder must respect (ours as the decoder). */
  maxTableSize: number;
  /** Largest decoded header list (RFC 7540 6.5.2 size: name + value + 32 per field). */
  maxHeaderListSize: number;
}

export class HpackDecoder {
  private readonly dynamic: Entry[] = []; // newest first
  private dynamicSize = 0;
  private tableSize: number;
  private readonly limits: HpackDecoderLimits;

  constructor(limits: HpackDecoderLimits) {
    this.limits = limits;
    this.tableSize = limits.maxTableSize;
  }

  /** Entries in the dynamic table, newest first (index 62 first). */
  dynamicEntries(): [string, string][] {
    return this.dynamic.map((e) => [e.name, e.value]);
  }

  private lookup(index: number): Entry | readonly [string, string] {
    if (index === 0) throw new HpackError("HPACK index 0");
    if (index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1]!;
    const e = this.dynamic[index - STATIC_TABLE.length - 1];
    if (!e) throw new HpackError(`HPACK index ${index} is beyond the dynamic table (${this.dynamic.length} entries)`);
    return e;
  }

  private evictTo(limit: number): void {
    while (this.dynamicSize > limit) {
      const e = this.dynamic.pop()!;
      this.dynamicSize -= e.size;
    }
  }

  private insert(name: string, value: string): void {
    const size = name.length + value.length + 32;
    if (size > this.tableSize) { this.dynamic.length = 0; this.dynamicSize = 0; return; }
    this.evictTo(this.tableSize - size);
    this.dynamic.unshift({ name, value, size });
    this.dynamicSize += size;
  }

  // The decoder's cursor: decode() reads the block through these helpers, which advance it, so
  // no representation allocates a [value, next] pair (this runs for every request's headers).
  private pos = 0;
  private huffman = false;

  private int(buf: Uint8Array, prefixBits: number): number {
    const pos = this.pos;
    if (pos >= buf.length) throw new HpackError("header block ends inside an integer");
    const max = (1 << prefixBits) - 1;
    const first = buf[pos]! & max;
    if (first < max) { this.pos = pos + 1; return first; }
    const [value, next] = decodeInteger(buf, pos, prefixBits);
    this.pos = next;
    return value;
  }

  /** A string literal at the cursor; `huffman` says how it was coded. */
  private str(buf: Uint8Array): string {
    if (this.pos >= buf.length) throw new HpackError("header block ends before a string");
    const huffman = (buf[this.pos]! & 0x80) !== 0;
    const len = this.int(buf, 7);
    const p = this.pos;
    if (p + len > buf.length) throw new HpackError(`HPACK string of ${len} octets runs past the header block`);
    const raw = buf.subarray(p, p + len);
    this.pos = p + len;
    this.huffman = huffman;
    if (!huffman) return latin1(raw);
    return raw.length <= HUFFMAN_CACHE_OCTETS ? huffmanCached(raw) : latin1(huffmanDecode(raw));
  }

  /** Decodes one complete header block, updating the dynamic table. Throws HpackError on any decoding error. */
  decode(block: Uint8Array): DecodedBlock {
    const fields: DecodedField[] = [];
    const sizeUpdates: number[] = [];
    let listSize = 0;
    this.pos = 0;
    while (this.pos < block.length) {
      const b = block[this.pos]!;
      let field: DecodedField;
      if (b & 0x80) {
        const index = this.int(block, 7);
        const e = this.lookup(index);
        field = "size" in e
          ? { name: e.name, value: e.value, representation: "indexed", index, nameHuffman: false, valueHuffman: false }
          : { name: e[0], value: e[1], representation: "indexed", index, nameHuffman: false, valueHuffman: false };
      } else if ((b & 0xe0) === 0x20) {
        if (fields.length > 0) throw new HpackError("dynamic table size update after a header field");
        const size = this.int(block, 5);
        if (size > this.limits.maxTableSize) throw new HpackError(`dynamic table size update to ${size} exceeds the limit ${this.limits.maxTableSize}`);
        this.tableSize = size;
        this.evictTo(size);
        sizeUpdates.push(size);
        continue;
      } else {
        const representation: Indexing = (b & 0xc0) === 0x40 ? "incremental" : (b & 0xf0) === 0x10 ? "never" : "without";
        const index = this.int(block, representation === "incremental" ? 6 : 4);
        let name: string;
        let nameHuffman = false;
        if (index === 0) {
          name = this.str(block);
          nameHuffman = this.huffman;
        } else {
          const e = this.lookup(index);
          name = "size" in e ? e.name : e[0];
        }
        const value = this.str(block);
        if (representation === "incremental") this.insert(name, value);
        field = { name, value, representation, index, nameHuffman, valueHuffman: this.huffman };
      }
      fields.push(field);
      listSize += field.name.length + field.value.length + 32;
      if (listSize > this.limits.maxHeaderListSize) throw new HpackError(`header list exceeds ${this.limits.maxHeaderListSize} octets`);
    }
    return { fields, sizeUpdates };
  }
}

/** One representation to write; `index` names a table entry (indexed) or a name (literal, 0 = literal name). */
export type EncodeOp =
  | { op: "indexed"; index: number }
  | { op: "size-update"; size: number }
  | { op: Indexing; index: number; name?: string; value: string; nameHuffman?: boolean; valueHuffman?: boolean };

function writeString(out: number[], s: string, huffman: boolean): void {
  const raw = Buffer.from(s, "latin1");
  const bytes = huffman ? huffmanEncode(raw) : raw;
  encodeInteger(out, huffman ? 0x80 : 0, 7, bytes.length);
  for (const x of bytes) out.push(x);
}

/** Writes a header block exactly as the ops say (no table of its own). */
export function encodeBlock(ops: readonly EncodeOp[]): Buffer {
  const out: number[] = [];
  for (const o of ops) {
    if (o.op === "indexed") { encodeInteger(out, 0x80, 7, o.index); continue; }
    if (o.op === "size-update") { encodeInteger(out, 0x20, 5, o.size); continue; }
    if (o.op === "incremental") encodeInteger(out, 0x40, 6, o.index);
    else encodeInteger(out, o.op === "never" ? 0x10 : 0x00, 4, o.index);
    if (o.index === 0) writeString(out, o.name ?? "", o.nameHuffman ?? false);
    writeString(out, o.value, o.valueHuffman ?? false);
  }
  return Buffer.from(out);
}

/**
 * A block carrying `fields` that leaves the receiver's dynamic table untouched:
 * every field a literal without indexing (never-indexed kept as such), names by
 * static index where there is one, strings Huffman-coded when that is shorter.
 */
export function encodeWithoutIndexing(fields: readonly { name: string; value: string; representation?: DecodedField["representation"] }[]): Buffer {
  const ops: EncodeOp[] = fields.map((f) => {
    const index = staticNameIndex(f.name);
    const shorter = (s: string) => { const b = Buffer.from(s, "latin1"); return huffmanEncodedLength(b) < b.length; };
    return {
      op: f.representation === "never" ? "never" : "without",
      index,
      ...(index === 0 ? { name: f.name, nameHuffman: shorter(f.name) } : {}),
      value: f.value,
      valueHuffman: shorter(f.value),
    };
  });
  return encodeBlock(ops);
}
