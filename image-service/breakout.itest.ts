// Malicious layers: every breakout fixture fails the pull with its entry named, writes
// nothing outside the layer and leaves no image or partial snapshot behind.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createLogger } from "../oci-runtime/foundation/log.ts";
import { startRegistry, type RunningRegistry } from "../hack/registry/registry.ts";
import { execFileSync } from "node:child_process";
import { stat } from "node:fs/promises";
import { breakoutLayers, pushLayerImage, swapLayers } from "../hack/registry/build-images.ts";
import { ImageService } from "./image-service.ts";

const log = createLogger({}, () => {});

describe("breakout fixtures", () => {
  let reg: RunningRegistry;
  let dir: string;
  let outside: string;
  let svc: ImageService;
  const refs = new Map<string, string>();

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "berth-breakout-"));
    outside = path.join(dir, "outside");
    await mkdir(outside);
    await writeFile(path.join(outside, "victim"), "untouched");
    reg = await startRegistry();
    for (const [name, entries] of Object.entries({ ...breakoutLayers(outside), ...swapLayers(outside) })) {
      refs.set(name, (await pushLayerImage({ address: reg.address }, `evil/${name}`, entries)).ref);
    }
    svc = new ImageService({ root: path.join(dir, "root"), hostsDir: "", maxConcurrentDownloads: 2, stallTimeoutMs: 10_000, log });
    await svc.init();
  });
  after(async () => {
    await reg?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  for (const name of Object.keys(swapLayers("/x"))) {
    it(`unpacks ${name} without touching the symlink target`, async () => {
      const before = await stat(outside);
      await svc.pull(refs.get(name)!);
      assert.deepEqual((await readdir(outside)).sort(), ["victim"]);
      assert.equal(await readFile(path.join(outside, "victim"), "utf8"), "untouched");
      const attrs = execFileSync("getfattr", ["--absolute-names", "-d", "-m", "-", path.join(outside, "victim")], { encoding: "utf8" });
      assert.doesNotMatch(attrs, /evil/);
      assert.equal((await stat(outside)).mtimeMs, before.mtimeMs);
      await svc.remove(refs.get(name)!);
    });
  }

  for (const name of Object.keys(breakoutLayers("/x"))) {
    it(`refuses ${name}`, async () => {
      const ref = refs.get(name)!;
      await assert.rejects(svc.pull(ref), (err: Error) => {
        assert.match(err.message, /entry "/, err.message);
        return true;
      });
      assert.deepEqual((await readdir(outside)).sort(), ["victim"]);
      assert.equal(await readFile(path.join(outside, "victim"), "utf8"), "untouched");
      assert.equal(svc.get(ref), undefined);
      const snaps = (await readdir(path.join(dir, "root", "snapshots"))).filter((d) => d !== "containers" && d !== "empty");
      assert.deepEqual(snaps, []);
      assert.deepEqual(await readdir(path.join(dir, "root", "content", "blobs", "sha256")), []);
    });
  }
});
