import { test } from "node:test";
import assert from "node:assert/strict";
import { bigLayerEntries, busyboxImage, pauseImage, pseudoRandom } from "./images.ts";

test("pseudo-random data is deterministic per label and incompressible-looking", () => {
  assert.deepEqual(pseudoRandom("x", 64), pseudoRandom("x", 64));
  assert.notDeepEqual(pseudoRandom("x", 64), pseudoRandom("y", 64));
  assert.equal(new Set(pseudoRandom("z", 4096)).size > 200, true);
});

test("the big image has 4 layers, ~100 MB and thousands of small files", () => {
  const layers = bigLayerEntries();
  assert.equal(layers.length, 4);
  const files = layers.flat().filter((e) => (e.type ?? "file") === "file");
  const bytes = files.reduce((a, e) => a + (e.data?.length ?? 0), 0);
  assert.ok(bytes > 95e6 && bytes < 115e6, `uncompressed bytes ${bytes}`);
  assert.ok(files.filter((e) => (e.data?.length ?? 0) < 16384).length >= 4000);
  assert.ok(files.filter((e) => (e.data?.length ?? 0) > 8e6).length >= 4);
});

test("busybox and pause images run sleep/echo and catatonit -P", () => {
  const bb = JSON.parse(busyboxImage().config.data.toString());
  assert.deepEqual(bb.config.Cmd, ["sh"]);
  assert.equal(bb.rootfs.diff_ids.length, 1);
  const pause = JSON.parse(pauseImage().config.data.toString());
  assert.deepEqual(pause.config.Entrypoint, ["/catatonit", "-P"]);
  assert.equal(pause.config.Cmd, null);
});
