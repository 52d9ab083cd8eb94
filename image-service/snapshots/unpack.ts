// One pass from compressed layer bytes to an unpacked directory: decompress (gzip, zstd or
// none), hash the uncompressed stream (the diff id), parse tar, apply entries. The
// decompressed bytes and the entries of one layer are bounded (image.max_layer_bytes,
// image.max_layer_entries): a small gzip of zeros or of tar headers fails with the limit named.
import { createHash } from "node:crypto";
import { once } from "node:events";
import { PassThrough, type Duplex } from "node:stream";
import { createGunzip, createZstdDecompress } from "node:zlib";
import type { Compression } from "../registry/media-types.ts";
import { DEFAULT_LAYER_HELPER } from "./layer-helper.ts";
import { LayerWriter } from "./layer-writer.ts";
import { LayerLimitError, readTar } from "./tar-reader.ts";

export interface UnpackResult { diffId: string; entries: number; bytes: number; /** Time spent flushing the layer (syncfs). */ syncMs: number }

export interface UnpackLimits {
  /** Most decompressed (tar) bytes in one layer. */
  maxLayerBytes: number;
  /** Most inodes (entries and implied parent directories) in one layer. */
  maxLayerEntries: number;
}

/**
 * Defaults: the largest real layers (CUDA and ML framework images) are around 10-20 GiB
 * unpacked and the largest hold a few hundred thousand files; both limits leave room above that.
 */
export const DEFAULT_UNPACK_LIMITS: UnpackLimits = { maxLayerBytes: 32 * 1024 ** 3, maxLayerEntries: 1_000_000 };

export interface UnpackOptions {
  /** Path of the berth-layer helper (nodes, xattrs, syncfs). */
  helper?: string;
  limits?: Partial<UnpackLimits>;
  /**
   * Runs when every byte is unpacked, before the layer is flushed (syncfs): the caller checks
   * digests here, and a throw fails the unpack without paying for the flush.
   */
  beforeSync?: (diffId: string) => void;
  /** syncfs for the layer's filesystem (a shared FsSyncer); default: the layer's own helper. */
  sync?: () => Promise<void>;
}

/**
 * Compressed bytes are handed to the decompressor (which runs on libuv's thread pool) in
 * batches of about this many bytes, and it answers in chunks of this size: every hand-over is a
 * thread wake-up, which on a busy machine costs the event loop more than the copy that batches.
 */
export const DECOMPRESS_BATCH = 1 << 20;

function decompressor(c: Compression): Duplex {
  if (c === "gzip") return createGunzip({ chunkSize: DECOMPRESS_BATCH });
  if (c === "zstd") return createZstdDecompress({ chunkSize: DECOMPRESS_BATCH });
  return new PassThrough({ highWaterMark: DECOMPRESS_BATCH });
}

/** Unpacks a layer stream into the (empty, existing) directory `dir`. */
export async function unpackLayer(src: AsyncIterable<Buffer>, compression: Compression, dir: string, opts: UnpackOptions = {}): Promise<UnpackResult> {
  const limits = { ...DEFAULT_UNPACK_LIMITS, ...opts.limits };
  const dec = decompressor(compression);
  const feeding = (async () => {
    try {
      let batch: Buffer[] = [];
      let batched = 0;
      // A decompressor is done with its input once it drains (the output is in buffers of its
      // own), so one batch buffer serves the whole layer; a pass-through hands the input on.
      const reuse = compression !== "none" ? Buffer.allocUnsafeSlow(2 * DECOMPRESS_BATCH) : undefined;
      const flush = async () => {
        let b: Buffer;
        if (batch.length === 1) b = batch[0]!;
        else if (reuse && batched <= reuse.length) {
          let o = 0;
          for (const c of batch) o += c.copy(reuse, o);
          b = reuse.subarray(0, batched);
        } else b = Buffer.concat(batch, batched);
        batch = [];
        batched = 0;
        // 'drain' means the decompressor has consumed every byte written; a batch copied into
        // `reuse` is at least DECOMPRESS_BATCH bytes, above the writable high-water mark, so
        // write() answers false and it is never refilled before that (but the last batch, which
        // is not refilled at all). once() rejects when the decompressor fails or is destroyed.
        if (!dec.write(b)) await once(dec, "drain");
      };
      for await (const c of src) {
        if (dec.destroyed) throw new Error("decompression stopped");
        batch.push(c);
        batched += c.length;
        if (batched >= DECOMPRESS_BATCH) await flush();
      }
      if (batched) await flush();
      dec.end();
    } catch (err) {
      dec.destroy(err as Error);
      throw err;
    }
  })();
  feeding.catch(() => {}); // surfaced below
  const hash = createHash("sha256");
  let bytes = 0;
  async function* tapped(): AsyncGenerator<Buffer> {
    for await (const c of dec as AsyncIterable<Buffer>) {
      bytes += c.length;
      if (bytes > limits.maxLayerBytes) {
        throw new LayerLimitError("image.max_layer_bytes", `layer decompresses to more than ${limits.maxLayerBytes} bytes (image.max_layer_bytes)`);
      }
      hash.update(c);
      yield c;
    }
  }
  let diffId = "";
  let syncMs = 0;
  const writer = new LayerWriter(dir, { helper: opts.helper ?? DEFAULT_LAYER_HELPER, maxEntries: limits.maxLayerEntries, ...(opts.sync ? { sync: opts.sync } : {}) });
  try {
    for await (const { entry, body, buffered } of readTar(tapped())) await writer.apply(entry, body, buffered);
    await feeding;
    diffId = "sha256:" + hash.digest("hex");
    opts.beforeSync?.(diffId);
    syncMs = await writer.finish();
  } catch (err) {
    dec.destroy(err as Error);
    await feeding.catch(() => {});
    await writer.abort();
    throw err;
  }
  return { diffId, entries: writer.entries, bytes, syncMs };
}
