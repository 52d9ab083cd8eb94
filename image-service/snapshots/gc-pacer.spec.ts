import { test } from "node:test";
import assert from "node:assert/strict";
import { GcPacer } from "./gc-pacer.ts";

const MB = 1 << 20;

/** A process whose buffers all die young unless `live` says what a collection leaves. */
function pacer(live = 0) {
  let held = 0;
  const p = new GcPacer({ checkEveryBytes: MB, growthBytes: 8 * MB, arrayBuffers: () => held, collect: () => { held = live; } });
  return { p, take: (bytes: number) => { held += bytes; p.took(bytes); }, held: () => held };
}

test("nothing is collected before the buffers have grown by the growth since the last collection", () => {
  const { p, take } = pacer();
  for (let i = 0; i < 8; i++) take(MB);
  assert.equal(p.collections, 0, "8 MB held: not more than the growth");
  take(MB);
  assert.equal(p.collections, 1, "9 MB held: collected");
});

test("the buffers are looked at only every checkEveryBytes taken in", () => {
  let looks = 0;
  const p = new GcPacer({ checkEveryBytes: MB, growthBytes: 8 * MB, arrayBuffers: () => { looks++; return 0; }, collect: () => {} });
  for (let i = 0; i < 64; i++) p.took(64 * 1024); // 4 MB in 64 KiB reads
  assert.equal(looks, 4);
});

test("what stays live after a collection is the new baseline: no collection after collection", () => {
  const { p, take, held } = pacer(20 * MB); // a layer's queues keep 20 MB live
  for (let i = 0; i < 9; i++) take(MB);
  assert.equal(p.collections, 1);
  assert.equal(held(), 20 * MB);
  for (let i = 0; i < 8; i++) take(MB);
  assert.equal(p.collections, 1, "28 MB held, 8 MB over the live 20: not yet");
  take(MB);
  assert.equal(p.collections, 2);
  for (let i = 0; i < 100; i++) take(MB);
  assert.equal(p.collections, 13, "one collection per 9 MB taken in, however much stays live");
});
