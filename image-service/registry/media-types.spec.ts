import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { BerthError, Code } from "../../oci-runtime/foundation/errdefs.ts";
import { type Descriptor, type IndexDoc, type Platform, layerCompression, MediaType, parseManifest, platformRank, selectPlatform } from "./media-types.ts";

const d = (n: number) => "sha256:" + String(n).repeat(64).slice(0, 64);
const entry = (n: number, platform?: Platform, extra: Partial<Descriptor> = {}): Descriptor => ({ mediaType: MediaType.ociManifest, digest: d(n), size: 10, ...(platform ? { platform } : {}), ...extra });
const amd64 = { os: "linux", architecture: "amd64" };

describe("platform selection", () => {
  it("picks linux/amd64 without variant over v3 and other arches", () => {
    const idx: IndexDoc = { schemaVersion: 2, manifests: [
      entry(1, { os: "linux", architecture: "arm64", variant: "v8" }),
      entry(2, { os: "linux", architecture: "amd64", variant: "v3" }),
      entry(3, { os: "windows", architecture: "amd64" }),
      entry(4, { os: "linux", architecture: "amd64" }),
    ] };
    assert.equal(selectPlatform(idx, amd64, "x").digest, d(4));
  });
  it("accepts amd64 v1 and prefers no variant", () => {
    const idx: IndexDoc = { schemaVersion: 2, manifests: [entry(1, { ...amd64, variant: "v1" }), entry(2, amd64)] };
    assert.equal(selectPlatform(idx, amd64, "x").digest, d(2));
    assert.equal(selectPlatform({ schemaVersion: 2, manifests: [entry(1, { ...amd64, variant: "v1" })] }, amd64, "x").digest, d(1));
  });
  it("skips attestation manifests", () => {
    const idx: IndexDoc = { schemaVersion: 2, manifests: [
      entry(1, { os: "unknown", architecture: "unknown" }, { annotations: { "vnd.docker.reference.type": "attestation-manifest" } }),
      entry(2, amd64),
    ] };
    assert.equal(selectPlatform(idx, amd64, "x").digest, d(2));
  });
  it("arm variants: v7 runs v6 and v5 but not v8", () => {
    const arm = { os: "linux", architecture: "arm", variant: "v7" };
    assert.equal(platformRank(arm, { os: "linux", architecture: "arm", variant: "v7" }), 0);
    assert.equal(platformRank(arm, { os: "linux", architecture: "arm", variant: "v6" }), 1);
    assert.equal(platformRank(arm, { os: "linux", architecture: "arm", variant: "v8" }), undefined);
    assert.equal(platformRank({ os: "linux", architecture: "arm64", variant: "v8" }, { os: "linux", architecture: "arm64" }), 1);
  });
  it("fails naming the platform when nothing matches", () => {
    assert.throws(() => selectPlatform({ schemaVersion: 2, manifests: [entry(1, { os: "linux", architecture: "s390x" })] }, amd64, "idx"), /idx has no manifest for platform linux\/amd64/);
  });
});

describe("parseManifest", () => {
  const man = { schemaVersion: 2, config: { mediaType: MediaType.ociConfig, digest: d(1), size: 2 }, layers: [] };
  it("classifies by body mediaType, then Content-Type, then shape", () => {
    assert.equal(parseManifest(Buffer.from(JSON.stringify({ ...man, mediaType: MediaType.dockerManifest })), "", "x").kind, "manifest");
    assert.equal(parseManifest(Buffer.from(JSON.stringify(man)), MediaType.ociManifest, "x").kind, "manifest");
    assert.equal(parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [] })), "", "x").kind, "index");
    assert.equal(parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [] })), MediaType.dockerList, "x").kind, "index");
  });
  it("refuses docker schema 1 clearly", () => {
    assert.throws(() => parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 1, fsLayers: [] })), MediaType.dockerSchema1Signed, "r"), (err: BerthError) => {
      assert.equal(err.code, Code.INVALID_ARGUMENT);
      assert.match(err.message, /schema 1/);
      return true;
    });
  });
  it("refuses malformed descriptors", () => {
    assert.throws(() => parseManifest(Buffer.from(JSON.stringify({ ...man, layers: [{ digest: 1 }] })), MediaType.ociManifest, "x"), /malformed layers/);
  });
});

describe("layerCompression", () => {
  it("maps gzip, zstd and plain; refuses others naming the type", () => {
    assert.equal(layerCompression(MediaType.dockerLayerGzip, "d"), "gzip");
    assert.equal(layerCompression(MediaType.ociLayerZstd, "d"), "zstd");
    assert.equal(layerCompression(MediaType.ociLayer, "d"), "none");
    assert.throws(() => layerCompression("application/x-bzip2", "d"), /"application\/x-bzip2"/);
  });
});
