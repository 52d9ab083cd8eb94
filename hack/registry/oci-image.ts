// Assembles OCI images (layers, config, manifest, index) in memory for pushing to a test registry.
import { createHash } from "node:crypto";
import { gzipSync, zstdCompressSync } from "node:zlib";

export const sha256 = (b: Uint8Array) => "sha256:" + createHash("sha256").update(b).digest("hex");

export interface Blob { digest: string; size: number; mediaType: string; data: Buffer }

export type LayerCompression = "gzip" | "zstd" | "none";

export function layerBlob(tar: Buffer, compression: LayerCompression = "gzip"): Blob & { diffId: string } {
  const data = compression === "gzip" ? gzipSync(tar) : compression === "zstd" ? zstdCompressSync(tar) : tar;
  const mediaType = compression === "gzip" ? "application/vnd.oci.image.layer.v1.tar+gzip"
    : compression === "zstd" ? "application/vnd.oci.image.layer.v1.tar+zstd" : "application/vnd.oci.image.layer.v1.tar";
  return { digest: sha256(data), size: data.length, mediaType, data, diffId: sha256(tar) };
}

export interface BuiltImage { blobs: Blob[]; manifest: Blob; config: Blob }

export function buildImage(layers: (Blob & { diffId: string })[], config: Record<string, unknown> = {}, platform = { os: "linux", architecture: "amd64" }, docker = false): BuiltImage {
  const cfg = Buffer.from(JSON.stringify({
    ...platform, created: "2024-01-01T00:00:00Z",
    config: { Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], Cmd: ["/bin/sh"], ...config },
    rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
  }));
  const config_: Blob = { digest: sha256(cfg), size: cfg.length, mediaType: docker ? "application/vnd.docker.container.image.v1+json" : "application/vnd.oci.image.config.v1+json", data: cfg };
  const mediaType = docker ? "application/vnd.docker.distribution.manifest.v2+json" : "application/vnd.oci.image.manifest.v1+json";
  const man = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType,
    config: { mediaType: config_.mediaType, digest: config_.digest, size: config_.size },
    layers: layers.map((l) => ({ mediaType: docker ? "application/vnd.docker.image.rootfs.diff.tar.gzip" : l.mediaType, digest: l.digest, size: l.size })),
  }));
  return { blobs: [...layers, config_], manifest: { digest: sha256(man), size: man.length, mediaType, data: man }, config: config_ };
}

export function buildIndex(entries: { image: BuiltImage; platform: { os: string; architecture: string; variant?: string } }[]): Blob {
  const doc = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: entries.map((e) => ({ mediaType: e.image.manifest.mediaType, digest: e.image.manifest.digest, size: e.image.manifest.size, platform: e.platform })),
  }));
  return { digest: sha256(doc), size: doc.length, mediaType: "application/vnd.oci.image.index.v1+json", data: doc };
}
