// One pass from compressed layer bytes to an unpacked directory: decompress (gzip, zstd or
// none), hash the uncompressed stream (the diff id), parse tar, apply entries. The
// decompressed bytes and the entries of one layer are bounded (image.max_layer_bytes,
// image.max_layer_entries): a small gzip of zeros or of tar headers fails with the limit named.
import { nodeCrypto, nodeZlib } from "../../oci-runtime/foundation/builtins.ts";
import { once } from "node:events";
import { PassThrough, type Duplex } from "node:stream";
import type { Compression } from "../registry/media-types.ts";
import { DEFAULT_LAYER_HELPER } from "./layer-helper.ts";
import { LayerWriter } from "./layer-writer.ts";
import { LayerLimitError, readTar } from "./tar-reader.ts";

/** What came in: the compressed (as sent) bytes' count and sha256 digest. */
export interface RawInput { bytes: number; digest: string }

export interface UnpackResult { diffId: string; entries: number; bytes: number; raw: RawInput; /** Time spent flushing the layer (syncfs). */ syncMs: number }

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
   * digests here (the uncompressed stream's diff id and the input's size and digest), and a
   * throw fails the unpack without paying for the flush.
   */
  beforeSync?: (diffId: string, raw: RawInput) => void;
  /** syncfs for the layer's filesystem (a shared FsSyncer); default: the layer's own helper. */
  sync?: () => Promise<void>;
  /**
   * Runs once every byte of the input has been taken in (the download is over; what is left is
   * to decompress and apply the last of it, and to flush). Not when the input fails; it may come
   * when the unpack has already failed on what it had. It must not throw (in the pool it runs in
   * the process's message handler).
   */
  onInputEnd?: () => void;
  /**
   * Stops the unpack: input ends with the signal's reason and the layer's helper is killed, so
   * a wait for it ends too. The unpack then fails as on any error (the writer is aborted first).
   */
  signal?: AbortSignal;
}

/**
 * Output chunk of the decompressor (which runs on libuv's thread pool): the tar reader gets
 * chunks of this size, and small files are handed to the writer as views into them.
 */
export const DECOMPRESS_CHUNK = 256 << 10;
/**
 * Compressed bytes are handed to the decompressor in batches of at least this many bytes while
 * it is busy, and at once when it is idle. Every hand-over is a wake-up of a pool thread and a
 * callback on the event loop; with the network's 64 KiB chunks that cost the event loop more
 * than the inflate itself. Up to FEED_QUEUE bytes may wait in the decompressor's queue and a
 * batch buffer is reused only once consumed, never waited for, so fetching and decompression
 * overlap instead of moving in lock-step (an earlier batching through one reused buffer waited
 * for each batch to be consumed).
 */
export const FEED_BATCH = 512 << 10;
export const FEED_QUEUE = 2 * FEED_BATCH;
/** Size of a reusable batch buffer: a batch is at most FEED_BATCH plus one incoming chunk. */
const BATCH_BUFFER = FEED_BATCH + (256 << 10);
/**
 * Decompressed bytes that may wait for the tar reader. zlib stops inflating in the middle of an
 * input chunk as soon as its output queue is over this mark; at the default (64 KiB, less than one
 * output chunk) the pool thread and the event loop took turns instead of working at once.
 */
export const OUTPUT_QUEUE = 4 * DECOMPRESS_CHUNK;

function decompressor(c: Compression): Duplex {
  // zlib streams pass stream options (the queue bound) to their Transform; @types omits them.
  const zopts = { chunkSize: DECOMPRESS_CHUNK, writableHighWaterMark: FEED_QUEUE, readableHighWaterMark: OUTPUT_QUEUE };
  if (c === "gzip") return nodeZlib().createGunzip(zopts);
  if (c === "zstd") return nodeZlib().createZstdDecompress(zopts);
  return new PassThrough({ highWaterMark: DECOMPRESS_CHUNK });
}

/** Unpacks a layer stream into the (empty, existing) directory `dir`. */
export async function unpackLayer(src: AsyncIterable<Buffer>, compression: Compression, dir: string, opts: UnpackOptions = {}): Promise<UnpackResult> {
  const limits = { ...DEFAULT_UNPACK_LIMITS, ...opts.limits };
  const dec = decompressor(compression);
  const rawHash = nodeCrypto().createHash("sha256");
  let rawBytes = 0;
  const feeding = (async () => {
    try {
      let batch: Buffer[] = [];
      let batched = 0;
      // Batch buffers come back for reuse once the decompressor is done with them (the write
      // callback); none is ever waited for: without a free one a fresh buffer is allocated. This
      // saves allocating the layer's size again, which cost garbage collections.
      const free: Buffer[] = [];
      const flush = async () => {
        let b: Buffer;
        let reuse: Buffer | undefined;
        if (batch.length === 1) b = batch[0]!;
        else if (compression !== "none" && batched <= BATCH_BUFFER) {
          reuse = free.pop() ?? Buffer.allocUnsafeSlow(BATCH_BUFFER);
          let o = 0;
          for (const c of batch) o += c.copy(reuse, o);
          b = reuse.subarray(0, o);
        } else b = Buffer.concat(batch, batched);
        batch = [];
        batched = 0;
        const ok = reuse ? dec.write(b, (err) => { if (!err && free.length < 4) free.push(reuse); }) : dec.write(b);
        if (!ok) await once(dec, "drain");
      };
      for await (const c of src) {
        if (dec.destroyed) throw new Error("decompression stopped");
        rawHash.update(c);
        rawBytes += c.length;
        batch.push(c);
        batched += c.length;
        // writableLength counts the batch being inflated until its callback: 0 means idle.
        if (batched >= FEED_BATCH || dec.writableLength === 0) await flush();
      }
      if (batched) await flush();
      dec.end();
      opts.onInputEnd?.();
    } catch (err) {
      dec.destroy(err as Error);
      throw err;
    }
  })();
  feeding.catch(() => {}); // surfaced below
  const hash = nodeCrypto().createHash("sha256");
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
  let raw: RawInput = { bytes: 0, digest: "" };
  let syncMs = 0;
  const writer = new LayerWriter(dir, { helper: opts.helper ?? DEFAULT_LAYER_HELPER, maxEntries: limits.maxLayerEntries, ...(opts.sync ? { sync: opts.sync } : {}) });
  const stop = () => {
    const reason = opts.signal?.reason instanceof Error ? opts.signal.reason : new Error("layer unpack stopped");
    dec.destroy(reason);
    writer.kill();
  };
  if (opts.signal?.aborted) stop();
  else opts.signal?.addEventListener("abort", stop, { once: true });
  try {
    for await (const { entry, body, buffered } of readTar(tapped())) await writer.apply(entry, body, buffered);
    await feeding;
    diffId = "sha256:" + hash.digest("hex");
    raw = { bytes: rawBytes, digest: "sha256:" + rawHash.digest("hex") };
    opts.beforeSync?.(diffId, raw);
    syncMs = await writer.finish();
  } catch (err) {
    // The feeding loop is not waited for: it may wait for the source's next chunk (a download's
    // stall timeout), and it writes only into the destroyed decompressor, never into the layer.
    dec.destroy(err as Error);
    await writer.abort();
    throw opts.signal?.aborted && opts.signal.reason instanceof Error ? opts.signal.reason : err;
  } finally {
    opts.signal?.removeEventListener("abort", stop);
  }
  return { diffId, entries: writer.entries, bytes, raw, syncMs };
}
