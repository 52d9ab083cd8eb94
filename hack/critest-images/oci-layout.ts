// Writes images into an OCI image layout directory (oci-layout, index.json,
// blobs/sha256/...). Each image is stored as a single-platform image index, the
// shape the upstream multi-arch images have, named by a ref-name annotation.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, renameSync, writeFileSync, openSync, fsyncSync, closeSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import type { ImageConfig } from "./images.ts";

export const MediaType = {
  index: "application/vnd.oci.image.index.v1+json",
  manifest: "application/vnd.oci.image.manifest.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  layerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
} as const;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: string; os: string };
  annotations?: Record<string, string>;
}

export const REF_NAME = "org.opencontainers.image.ref.name";
const CREATED = "2024-01-01T00:00:00Z";

export const sha256 = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** Writes a file through a temp file, fsync and rename. */
export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(16).slice(2)}`;
  writeFileSync(tmp, data);
  const fd = openSync(tmp, "r");
  try { fsyncSync(fd); } finally { closeSync(fd); }
  renameSync(tmp, path);
}

export interface LayerBlob {
  descriptor: Descriptor;
  diffId: string;
}

export class OciLayoutWriter {
  private readonly refs: Descriptor[] = [];
  readonly dir: string;
  /** Where gzipped layers are kept by diff id, so unchanged layers are not compressed again. */
  private readonly gzCache: string;

  constructor(dir: string, gzCache: string) {
    this.dir = dir;
    this.gzCache = gzCache;
    mkdirSync(join(dir, "blobs", "sha256"), { recursive: true });
    mkdirSync(gzCache, { recursive: true });
    writeFileAtomic(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  }

  /** Stores a blob by digest (once) and returns its descriptor. */
  addBlob(data: Uint8Array, mediaType: string): Descriptor {
    const digest = sha256(data);
    const path = join(this.dir, "blobs", "sha256", digest.slice(7));
    if (!existsSync(path)) writeFileAtomic(path, data);
    return { mediaType, digest, size: data.length };
  }

  /** Compresses (or reuses the cached compression of) an uncompressed layer tar and stores it. */
  addLayer(tar: Uint8Array): LayerBlob {
    const diffId = sha256(tar);
    const cached = join(this.gzCache, `${diffId.slice(7)}.gz`);
    let gz: Uint8Array;
    if (existsSync(cached)) gz = readFileSync(cached);
    else {
      gz = gzipSync(tar, { level: 9 });
      writeFileAtomic(cached, gz);
    }
    return { descriptor: this.addBlob(gz, MediaType.layerGzip), diffId };
  }

  /** Stores config, manifest and a one-entry index for linux/amd64; returns the index descriptor. */
  addImage(layers: readonly LayerBlob[], config: ImageConfig, history: readonly string[]): Descriptor {
    const cfg = {
      created: CREATED,
      architecture: "amd64",
      os: "linux",
      config,
      rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
      history: history.map((h) => ({ created: CREATED, created_by: h })),
    };
    const configDesc = this.addBlob(Buffer.from(JSON.stringify(cfg)), MediaType.config);
    const manifest = { schemaVersion: 2, mediaType: MediaType.manifest, config: configDesc, layers: layers.map((l) => l.descriptor) };
    const manifestDesc = this.addBlob(Buffer.from(JSON.stringify(manifest)), MediaType.manifest);
    const index = { schemaVersion: 2, mediaType: MediaType.index, manifests: [{ ...manifestDesc, platform: { architecture: "amd64", os: "linux" } }] };
    return this.addBlob(Buffer.from(JSON.stringify(index)), MediaType.index);
  }

  /** Names an image in index.json (several names may share one image). */
  name(image: Descriptor, refName: string): void {
    this.refs.push({ ...image, annotations: { [REF_NAME]: refName } });
  }

  /** Writes index.json naming every image added. */
  finish(): void {
    writeFileAtomic(join(this.dir, "index.json"), JSON.stringify({ schemaVersion: 2, mediaType: MediaType.index, manifests: this.refs }, null, 2) + "\n");
  }
}
