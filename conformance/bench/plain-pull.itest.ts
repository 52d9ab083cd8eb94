// The plain-pipeline reference against a real loopback docker-registry.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startRegistry } from "../../hack/registry/registry.ts";
import { buildImage, layerBlob } from "../../hack/registry/oci-image.ts";
import { pushImage } from "../../hack/registry/push.ts";
import { buildTar } from "../../hack/registry/tar-writer.ts";
import { plainPull } from "./plain-pull.ts";

test("plainPull fetches, checks and unpacks every layer, and names a missing blob", async () => {
  const workDir = await mkdtemp(join(tmpdir(), "berth-npmbench-plain-"));
  const reg = await startRegistry({ dir: join(workDir, "registry") });
  try {
    const layers = [
      layerBlob(buildTar([{ name: "a/", type: "dir" }, { name: "a/one", data: "1".repeat(100_000) }]), "gzip"),
      layerBlob(buildTar([{ name: "b", data: "two" }]), "gzip"),
    ];
    const img = buildImage(layers, { Cmd: ["sh"] });
    await pushImage({ address: reg.address }, "bench/plain", "t", img);
    const blobs = layers.map((l) => ({ digest: l.digest, size: l.size }));
    const seconds = await plainPull({ registry: reg.address, repo: "bench/plain", layers: blobs, workDir });
    assert.ok(seconds > 0 && seconds < 60, `seconds ${seconds}`);
    assert.deepEqual((await readdir(workDir)).filter((n) => n.startsWith("plain-")), [], "its directory is removed");
    const missing = `sha256:${"0".repeat(64)}`;
    await assert.rejects(plainPull({ registry: reg.address, repo: "bench/plain", layers: [{ digest: missing, size: 1 }], workDir }), new RegExp(`GET blob ${missing}: HTTP 404`));
  } finally {
    await reg.stop();
    await rm(workDir, { recursive: true, force: true });
  }
});
