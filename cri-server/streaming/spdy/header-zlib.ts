// One zlib context per direction for SPDY header blocks, primed with the
// SPDY/3 dictionary; every block ends with a sync flush so the peer can
// decode it on its own. Node's zlib is asynchronous: calls are queued so
// blocks are processed strictly in order against the shared context.

import zlib from "node:zlib";
import { SPDY3_DICTIONARY } from "./dictionary.ts";
import { SpdyProtocolError } from "./frames.ts";

type Z = zlib.Deflate | zlib.Inflate;

class ZContext {
  #z: Z;
  #chain: Promise<unknown> = Promise.resolve();
  #failed: Error | undefined;
  #what: string;

  constructor(z: Z, what: string) {
    this.#z = z;
    this.#what = what;
    z.on("error", (err) => { this.#failed ??= err; });
  }

  run(input: Buffer): Promise<Buffer> {
    const p = this.#chain.then(() => this.#once(input));
    this.#chain = p.catch(() => undefined);
    return p;
  }

  #once(input: Buffer): Promise<Buffer> {
    if (this.#failed) return Promise.reject(new SpdyProtocolError(`header ${this.#what} failed: ${this.#failed.message}`));
    return new Promise((resolve, reject) => {
      const z = this.#z;
      const onError = (err: Error) => reject(new SpdyProtocolError(`header ${this.#what} failed: ${err.message}`));
      z.once("error", onError);
      z.write(input);
      z.flush(zlib.constants.Z_SYNC_FLUSH, () => {
        z.off("error", onError);
        if (this.#failed) return reject(new SpdyProtocolError(`header ${this.#what} failed: ${this.#failed.message}`));
        const out: Buffer[] = [];
        let c: Buffer | null;
        while ((c = z.read() as Buffer | null) !== null) out.push(c);
        resolve(Buffer.concat(out));
      });
    });
  }

  close() { this.#z.destroy(); }
}

export class HeaderCompressor {
  #ctx = new ZContext(zlib.createDeflate({ dictionary: SPDY3_DICTIONARY, level: zlib.constants.Z_DEFAULT_COMPRESSION }), "compression");
  compress(block: Buffer): Promise<Buffer> { return this.#ctx.run(block); }
  close() { this.#ctx.close(); }
}

export class HeaderDecompressor {
  #ctx = new ZContext(zlib.createInflate({ dictionary: SPDY3_DICTIONARY }), "decompression");
  /** Inflates one header block; a corrupt stream rejects with SpdyProtocolError (the session is then unusable). */
  decompress(block: Buffer): Promise<Buffer> {
    if (block.length === 0) return Promise.resolve(Buffer.alloc(0));
    return this.#ctx.run(block);
  }
  close() { this.#ctx.close(); }
}
