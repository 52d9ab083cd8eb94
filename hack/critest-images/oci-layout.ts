// Writes images into an OCI image layout directory (oci-layout, index.json,
// blobs/sha256/...). Each image is stored as a single-platform image index, the
// shape the upstream multi-arch images have, named by a ref-name annotation.
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import type { ImageConfig } from "./images.ts";
import { writeFileAtomic } from "../../oci-runtime/foundation/atomic-file.ts";
import { sha256 } from "../registry/oci-image.ts";
import { MediaType, type Descriptor } from "../../image-service/registry/media-types.ts";


/** An OCI content descriptor: the image service's own type. */
export type { Descriptor };

export const REF_NAME = "org.opencontainers.image.ref.name";
const CREATED = "2024-01-01T00:00:00Z";

/** Layout files are read by skopeo and the registry (all root); 0644 like any image layout. */
const FILE_MODE = 0o644;

export interface LayerBlob {
  descriptor: Descriptor;
  diffId: string;
}

export class OciLayoutWriter {
  private readonly refs: Descriptor[] = [];
  readonly dir: string;
  /** Where gzipped layers are kept by diff id, so unchanged layers are not compressed again. */
  private readonly gzCache: string;

  private constructor(dir: string, gzCache: string) {
    this.dir = dir;
    this.gzCache = gzCache;
  }

  /** A new layout in `dir` (its blobs directory and the oci-layout file written). */
  static async create(dir: string, gzCache: string): Promise<OciLayoutWriter> {
    mkdirSync(join(dir, "blobs", "sha256"), { recursive: true });
    mkdirSync(gzCache, { recursive: true });
    await writeFileAtomic(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }), FILE_MODE);
    return new OciLayoutWriter(dir, gzCache);
  }

  /** Stores a blob by digest (once) and returns its descriptor. */
  async addBlob(data: Uint8Array, mediaType: string): Promise<Descriptor> {
    const digest = sha256(data);
    const path = join(this.dir, "blobs", "sha256", digest.slice(7));
    if (!existsSync(path)) await writeFileAtomic(path, data, FILE_MODE);
    return { mediaType, digest, size: data.length };
  }

  /** Compresses (or reuses the cached compression of) an uncompressed layer tar and stores it. */
  async addLayer(tar: Uint8Array): Promise<LayerBlob> {
    const diffId = sha256(tar);
    const cached = join(this.gzCache, `${diffId.slice(7)}.gz`);
    let gz: Uint8Array;
    if (existsSync(cached)) gz = readFileSync(cached);
    else {
      gz = gzipSync(tar, { level: 9 });
      await writeFileAtomic(cached, gz, FILE_MODE);
    }
    return { descriptor: await this.addBlob(gz, MediaType.ociLayerGzip), diffId };
  }

  /** Stores config, manifest and a one-entry index for linux/amd64; returns the index descriptor. */
  async addImage(layers: readonly LayerBlob[], config: ImageConfig, history: readonly string[]): Promise<Descriptor> {
    const cfg = {
      created: CREATED,
      architecture: "amd64",
      os: "linux",
      config,
      rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
      history: history.map((h) => ({ created: CREATED, created_by: h })),
    };
    const configDesc = await this.addBlob(Buffer.from(JSON.stringify(cfg)), MediaType.ociConfig);
    const manifest = { schemaVersion: 2, mediaType: MediaType.ociManifest, config: configDesc, layers: layers.map((l) => l.descriptor) };
    const manifestDesc = await this.addBlob(Buffer.from(JSON.stringify(manifest)), MediaType.ociManifest);
    const index = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [{ ...manifestDesc, platform: { architecture: "amd64", os: "linux" } }] };
    return this.addBlob(Buffer.from(JSON.stringify(index)), MediaType.ociIndex);
  }

  /** Names an image in index.json (several names may share one image). */
  name(image: Descriptor, refName: string): void {
    this.refs.push({ ...image, annotations: { [REF_NAME]: refName } });
  }

  /** Writes index.json naming every image added. */
  finish(): Promise<void> {
    return writeFileAtomic(join(this.dir, "index.json"), JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: this.refs }, null, 2) + "\n", FILE_MODE);
  }
}
