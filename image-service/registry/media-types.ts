// OCI and Docker media types, and manifest/index parsing with platform selection.
import { invalidArgument, unavailable } from "../../oci-runtime/foundation/errdefs.ts";

export const MediaType = {
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  dockerList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  dockerSchema1: "application/vnd.docker.distribution.manifest.v1+json",
  dockerSchema1Signed: "application/vnd.docker.distribution.manifest.v1+prettyjws",
  ociLayer: "application/vnd.oci.image.layer.v1.tar",
  ociLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  ociLayerZstd: "application/vnd.oci.image.layer.v1.tar+zstd",
  ociLayerNDGzip: "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
  ociLayerNDZstd: "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
  ociLayerND: "application/vnd.oci.image.layer.nondistributable.v1.tar",
  dockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  dockerForeignLayerGzip: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
} as const;

/** Accept header for manifest requests, most preferred first. */
export const MANIFEST_ACCEPT = [
  MediaType.ociIndex, MediaType.dockerList, MediaType.ociManifest, MediaType.dockerManifest,
].join(", ");

export type Compression = "gzip" | "zstd" | "none";

/** The compression of a layer media type; throws naming an unsupported type. */
export function layerCompression(mediaType: string, digest: string): Compression {
  switch (mediaType) {
    case MediaType.ociLayerGzip: case MediaType.ociLayerNDGzip: case MediaType.dockerLayerGzip: case MediaType.dockerForeignLayerGzip:
      return "gzip";
    case MediaType.ociLayerZstd: case MediaType.ociLayerNDZstd:
      return "zstd";
    case MediaType.ociLayer: case MediaType.ociLayerND: case "application/vnd.docker.image.rootfs.diff.tar":
      return "none";
    default:
      throw invalidArgument(`unsupported layer media type ${JSON.stringify(mediaType)} for layer ${digest}`);
  }
}

export interface Platform { os: string; architecture: string; variant?: string; "os.version"?: string }
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
  urls?: string[];
}
export interface IndexDoc { schemaVersion: number; mediaType?: string; manifests: Descriptor[] }
export interface ManifestDoc { schemaVersion: number; mediaType?: string; config: Descriptor; layers: Descriptor[] }

export type ParsedManifest =
  | { kind: "index"; mediaType: string; doc: IndexDoc }
  | { kind: "manifest"; mediaType: string; doc: ManifestDoc };

const isDescriptor = (d: unknown): d is Descriptor =>
  typeof d === "object" && d !== null && typeof (d as Descriptor).digest === "string" &&
  typeof (d as Descriptor).mediaType === "string" && Number.isSafeInteger((d as Descriptor).size) && (d as Descriptor).size >= 0;

/** Classifies and validates a manifest body; `contentType` is the registry's Content-Type (may be empty). */
export function parseManifest(body: Buffer, contentType: string, what: string): ParsedManifest {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(body.toString("utf8")) as Record<string, unknown>;
  } catch (err) {
    throw unavailable(`manifest ${what} is not valid json`, err);
  }
  if (typeof doc !== "object" || doc === null) throw unavailable(`manifest ${what} is not a json object`);
  const ct = contentType.split(";")[0]!.trim();
  const mt = typeof doc.mediaType === "string" ? doc.mediaType : ct;
  if (doc.schemaVersion === 1 || mt === MediaType.dockerSchema1 || mt === MediaType.dockerSchema1Signed) {
    throw invalidArgument(`manifest ${what} is docker schema 1, which is deprecated and not supported; push the image again with a current client`);
  }
  const isIndex = mt === MediaType.ociIndex || mt === MediaType.dockerList || (!mt && Array.isArray(doc.manifests) && !("layers" in doc));
  if (isIndex) {
    if (!Array.isArray(doc.manifests) || !doc.manifests.every(isDescriptor)) throw unavailable(`image index ${what} has malformed manifests`);
    return { kind: "index", mediaType: mt || MediaType.ociIndex, doc: doc as unknown as IndexDoc };
  }
  const isManifest = mt === MediaType.ociManifest || mt === MediaType.dockerManifest || (!mt && "config" in doc && Array.isArray(doc.layers));
  if (!isManifest) throw invalidArgument(`manifest ${what} has unsupported media type ${JSON.stringify(mt)}`);
  if (!isDescriptor(doc.config)) throw unavailable(`manifest ${what} has a malformed config descriptor`);
  if (!Array.isArray(doc.layers) || !doc.layers.every(isDescriptor)) throw unavailable(`manifest ${what} has malformed layers`);
  return { kind: "manifest", mediaType: mt || MediaType.ociManifest, doc: doc as unknown as ManifestDoc };
}

/** Host platform in OCI terms. */
export function hostPlatform(): Platform {
  const arch = ({ x64: "amd64", arm64: "arm64", arm: "arm", ia32: "386", ppc64: "ppc64le", s390x: "s390x", riscv64: "riscv64" } as Record<string, string>)[process.arch] ?? process.arch;
  const variant = arch === "arm64" ? "v8" : arch === "arm" ? `v${(process.config.variables as Record<string, unknown>).arm_version ?? "7"}` : undefined;
  return { os: "linux", architecture: arch, ...(variant ? { variant } : {}) };
}

/**
 * Rank of a candidate platform for `want` (lower is better), or undefined if it cannot run.
 * Variant rules: amd64 accepts "" and "v1" (the baseline); arm64 treats "" and "v8" as equal;
 * arm vN also runs vN-1 ... v5, preferring the closest.
 */
export function platformRank(want: Platform, got: Platform | undefined): number | undefined {
  if (!got) return undefined;
  if (got.os !== want.os || got.architecture !== want.architecture) return undefined;
  const gv = got.variant ?? "";
  const wv = want.variant ?? "";
  if (want.architecture === "amd64") return gv === "" ? 0 : gv === "v1" ? 1 : undefined;
  if (want.architecture === "arm64") return gv === "" || gv === "v8" ? (gv === wv ? 0 : 1) : undefined;
  if (want.architecture === "arm") {
    const n = (v: string) => Number(v.replace(/^v/, ""));
    const w = n(wv || "v7");
    const g = gv === "" ? w : n(gv);
    if (!Number.isInteger(g) || g > w || g < 5) return undefined;
    return w - g;
  }
  return gv === wv ? 0 : undefined;
}

/** Picks the best manifest for `want` from an index (first wins among equals). */
export function selectPlatform(index: IndexDoc, want: Platform, what: string): Descriptor {
  let best: { d: Descriptor; rank: number } | undefined;
  for (const d of index.manifests) {
    if (d.annotations?.["vnd.docker.reference.type"] === "attestation-manifest") continue;
    if (d.mediaType !== MediaType.ociManifest && d.mediaType !== MediaType.dockerManifest &&
        d.mediaType !== MediaType.ociIndex && d.mediaType !== MediaType.dockerList) continue;
    // A descriptor without a platform is a last resort (single-manifest OCI layouts write none).
    const rank = d.platform ? platformRank(want, d.platform) : 100;
    if (rank !== undefined && (!best || rank < best.rank)) best = { d, rank };
  }
  if (!best) {
    const p = `${want.os}/${want.architecture}${want.variant ? "/" + want.variant : ""}`;
    throw invalidArgument(`image index ${what} has no manifest for platform ${p}`);
  }
  return best.d;
}
