// One zlib context per direction for SPDY header blocks, primed with the
// SPDY/3 dictionary; every block ends with a sync flush so the peer can
// decode it on its own. Node's zlib is asynchronous: calls are queued so
// blocks are processed strictly in order against the shared context.
//
// Inflation is bounded: output is pulled chunk by chunk (zlib stops producing
// while its readable buffer is full) and counted, and a block that inflates
// past the limit fails the context before more than one chunk over the limit
// is ever held in memory. A tiny compressed block can otherwise expand to
// gigabytes (a "header bomb").

import zlib from "node:zlib";
import { SPDY3_DICTIONARY } from "./dictionary.ts";
import { SpdyLimitError, SpdyProtocolError } from "./frames.ts";
import { Mutex } from "../../../oci-runtime/foundation/keyed-mutex.ts";

type Z = zlib.Deflate | zlib.Inflate;

/** zlib's output chunk: the granularity at which the limit is checked. */
const CHUNK = 16 * 1024;

class ZContext {
  #z: Z;
  /** One inflate/deflate at a time: the zlib context is shared by every header block of the session. */
  readonly #serial = new Mutex();
  #failed: Error | undefined;
  #what: string;
  #limit: number;

  constructor(z: Z, what: string, limit: number) {
    this.#z = z;
    this.#what = what;
    this.#limit = limit;
    z.on("error", (err) => { this.#failed ??= err; });
  }

  run(input: Buffer): Promise<Buffer> {
    return this.#serial.run(() => this.#once(input));
  }

  #error(): SpdyProtocolError {
    const f = this.#failed!;
    return f instanceof SpdyProtocolError ? f : new SpdyProtocolError(`header ${this.#what} failed: ${f.message}`);
  }

  #once(input: Buffer): Promise<Buffer> {
    if (this.#failed) return Promise.reject(this.#error());
    return new Promise((resolve, reject) => {
      const z = this.#z;
      const out: Buffer[] = [];
      let total = 0;
      let settled = false;
      const finish = (err?: Error) => {
        if (settled) return;
        settled = true;
        z.off("readable", drain);
        z.off("error", onError);
        if (err) reject(err); else resolve(Buffer.concat(out));
      };
      // Pulls what zlib produced so far; false once the block went over the limit.
      function drain(this: void): boolean {
        let c: Buffer | null;
        while (!settled && (c = z.read() as Buffer | null) !== null) {
          total += c.length;
          if (total > limit) {
            failed(new SpdyLimitError(`header block inflates to more than ${limit} bytes (the limit, stream.max_header_bytes)`));
            return false;
          }
          out.push(c);
        }
        return !settled;
      }
      const limit = this.#limit;
      const failed = (err: SpdyProtocolError) => {
        this.#failed ??= err;
        z.destroy();
        finish(err);
      };
      const onError = () => finish(this.#error());
      z.on("readable", drain);
      z.once("error", onError);
      z.write(input);
      z.flush(zlib.constants.Z_SYNC_FLUSH, () => {
        if (settled) return;
        if (this.#failed) return finish(this.#error());
        if (drain()) finish();
      });
    });
  }

  close() { this.#z.destroy(); }
}

export class HeaderCompressor {
  #ctx = new ZContext(zlib.createDeflate({ dictionary: SPDY3_DICTIONARY, level: zlib.constants.Z_DEFAULT_COMPRESSION, chunkSize: CHUNK }), "compression", Number.MAX_SAFE_INTEGER);
  compress(block: Buffer): Promise<Buffer> { return this.#ctx.run(block); }
  close() { this.#ctx.close(); }
}

export class HeaderDecompressor {
  #ctx: ZContext;
  /** `maxBytes`: the largest inflated header block accepted (default 64 KiB). */
  constructor(maxBytes = 64 * 1024) {
    this.#ctx = new ZContext(zlib.createInflate({ dictionary: SPDY3_DICTIONARY, chunkSize: CHUNK }), "decompression", maxBytes);
  }
  /** Inflates one header block; a corrupt or oversized block rejects with SpdyProtocolError (the session is then unusable). */
  decompress(block: Buffer): Promise<Buffer> {
    if (block.length === 0) return Promise.resolve(Buffer.alloc(0));
    return this.#ctx.run(block);
  }
  close() { this.#ctx.close(); }
}
