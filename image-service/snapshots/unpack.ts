// One pass from compressed layer bytes to an unpacked directory: decompress (gzip, zstd or
// none), hash the uncompressed stream (the diff id), parse tar, apply entries.
import { createHash } from "node:crypto";
import { once } from "node:events";
import { PassThrough, type Duplex } from "node:stream";
import { createGunzip, createZstdDecompress } from "node:zlib";
import type { Compression } from "../registry/media-types.ts";
import { LayerWriter } from "./layer-writer.ts";
import { readTar } from "./tar-reader.ts";

export interface UnpackResult { diffId: string; entries: number }

function decompressor(c: Compression): Duplex {
  if (c === "gzip") return createGunzip({ chunkSize: 256 << 10 });
  if (c === "zstd") return createZstdDecompress({ chunkSize: 256 << 10 });
  return new PassThrough({ highWaterMark: 256 << 10 });
}

/** Unpacks a layer stream into the (empty, existing) directory `dir`. */
export async function unpackLayer(src: AsyncIterable<Buffer>, compression: Compression, dir: string): Promise<UnpackResult> {
  const dec = decompressor(compression);
  const feeding = (async () => {
    try {
      for await (const c of src) {
        if (dec.destroyed) throw new Error("decompression stopped");
        if (!dec.write(c)) await once(dec, "drain");
      }
      dec.end();
    } catch (err) {
      dec.destroy(err as Error);
      throw err;
    }
  })();
  feeding.catch(() => {}); // surfaced below
  const hash = createHash("sha256");
  async function* tapped(): AsyncGenerator<Buffer> {
    for await (const c of dec as AsyncIterable<Buffer>) {
      hash.update(c);
      yield c;
    }
  }
  const writer = new LayerWriter(dir);
  try {
    for await (const { entry, body } of readTar(tapped())) await writer.apply(entry, body);
  } catch (err) {
    dec.destroy(err as Error);
    await feeding.catch(() => {});
    throw err;
  }
  await feeding;
  await writer.finish();
  return { diffId: "sha256:" + hash.digest("hex"), entries: writer.entries };
}
