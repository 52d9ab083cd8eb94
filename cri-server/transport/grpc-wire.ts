// The gRPC-over-HTTP/2 wire rules berth's server needs (grpc/grpc PROTOCOL-HTTP2.md), kept
// apart from any socket so they can be tested alone: the length-prefixed message framing, the
// `grpc-timeout` header and the percent-encoding of `grpc-message`.

/** A message frame's prefix: one flag octet (1 = compressed) and a 4-octet big-endian length. */
export const PREFIX = 5;

/** Why a request body was refused: the server turns it into a status naming the value. */
export class WireError extends Error {
  readonly kind: "too-large" | "compressed" | "bad-flag" | "second-message" | "no-message" | "truncated";
  constructor(kind: WireError["kind"], message: string) {
    super(message);
    this.kind = kind;
  }
}

/** Writes the prefix of an uncompressed message of `length` bytes into octets 0-4 of `buf`. */
export function writePrefix(buf: Buffer, length: number): void {
  buf[0] = 0;
  buf.writeUInt32BE(length, 1);
}

/** One message in its frame: the prefix and the bytes, in one buffer (one DATA write). */
export function frameMessage(body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(PREFIX + body.length);
  writePrefix(out, body.length);
  out.set(body, PREFIX);
  return out;
}

/**
 * Collects the one request message of a unary or server-streaming call from the DATA chunks as
 * they come. It refuses, as soon as the prefix shows it, a message longer than `maxBytes`, a
 * compressed one (berth offers only "identity"), an unknown flag, and a second message. It
 * copies what it keeps (a chunk is a view into a socket read, which a kept view would pin
 * whole) into a buffer that grows by doubling as bytes arrive: never the length the prefix
 * claims, which costs a client nothing to send, and at most twice what arrived plus 4 KiB,
 * however small the chunks.
 */
export class RequestReader {
  private readonly maxBytes: number;
  private readonly prefix = Buffer.alloc(PREFIX);
  private headLength = 0;
  private length = 0; // the message's, from the prefix
  private body: Buffer | null = null;
  private filled = 0;
  private complete = false;

  constructor(maxBytes: number) { this.maxBytes = maxBytes; }

  /** Bytes held so far, room to grow included (for the server's bound on buffered requests). */
  get held(): number { return this.headLength + (this.body?.length ?? 0); }

  /** Feeds one DATA chunk (copied, never kept); throws WireError on the first thing refused. */
  push(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) {
      if (this.complete) throw new WireError("second-message", "a unary or server-streaming call carries one request message; the client sent more");
      if (this.headLength < PREFIX) {
        const n = Math.min(PREFIX - this.headLength, chunk.length - pos);
        chunk.copy(this.prefix, this.headLength, pos, pos + n);
        this.headLength += n;
        pos += n;
        if (this.headLength < PREFIX) continue;
        const flag = this.prefix[0]!;
        this.length = this.prefix.readUInt32BE(1);
        if (flag === 1) throw new WireError("compressed", "the request message is compressed; berth accepts grpc-encoding identity only");
        if (flag !== 0) throw new WireError("bad-flag", `the request message's compressed flag is ${flag}; it must be 0 or 1`);
        if (this.length > this.maxBytes) throw new WireError("too-large", `the request message is ${this.length} bytes; berth accepts at most ${this.maxBytes}`);
        if (this.length === 0) this.complete = true;
        continue;
      }
      const n = Math.min(this.length - this.filled, chunk.length - pos);
      const need = this.filled + n;
      if (!this.body || need > this.body.length) {
        const grown = Buffer.allocUnsafeSlow(Math.min(this.length, Math.max(need, 4096, 2 * (this.body?.length ?? 0))));
        if (this.body) this.body.copy(grown, 0, 0, this.filled);
        this.body = grown;
      }
      chunk.copy(this.body, this.filled, pos, pos + n);
      this.filled = need;
      pos += n;
      if (this.filled === this.length) this.complete = true;
    }
  }

  /** At the end of the request: the message, or WireError when there is none or it was cut short. */
  finish(): Buffer {
    if (this.complete) return this.body ? this.body.subarray(0, this.length) : Buffer.alloc(0);
    if (this.headLength === 0) throw new WireError("no-message", "the call ended without a request message");
    throw new WireError("truncated", `the request ended inside a message (${this.headLength + this.filled} bytes of ${this.headLength === PREFIX ? PREFIX + this.length : "a 5-byte prefix"})`);
  }
}

const TIMEOUT_UNITS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 1e-3, n: 1e-6 };

/**
 * `grpc-timeout`: 1 to 8 ASCII digits and one unit (H M S m u n). Returns milliseconds, or
 * undefined when the value does not follow the rule.
 */
export function parseTimeout(value: string): number | undefined {
  const m = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (!m) return undefined;
  return Number(m[1]) * TIMEOUT_UNITS[m[2]!]!;
}

/**
 * `grpc-message`: UTF-8, with every octet outside 0x20-0x7E, and '%' itself, written as %XX.
 */
export function encodeStatusMessage(message: string): string {
  const bytes = Buffer.from(message, "utf8");
  let plain = true;
  for (const b of bytes) if (b < 0x20 || b > 0x7e || b === 0x25) { plain = false; break; }
  if (plain) return message;
  let out = "";
  for (const b of bytes) out += b < 0x20 || b > 0x7e || b === 0x25 ? `%${b.toString(16).toUpperCase().padStart(2, "0")}` : String.fromCharCode(b);
  return out;
}

/** The reverse, for tests and clients: %XX sequences back to UTF-8. */
export function decodeStatusMessage(value: string): string {
  if (!value.includes("%")) return value;
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x25 && i + 2 < value.length && /^[0-9A-Fa-f]{2}$/.test(value.slice(i + 1, i + 3))) {
      bytes.push(parseInt(value.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(c & 0xff);
  }
  return Buffer.from(bytes).toString("utf8");
}
