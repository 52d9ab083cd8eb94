import { test } from "node:test";
import assert from "node:assert/strict";
import { percentile, summarize, timed } from "./stats.ts";

test("percentile uses the nearest rank", () => {
  const xs = Array.from({ length: 20 }, (_, i) => 20 - i); // 20..1, unsorted
  assert.equal(percentile(xs, 50), 10);
  assert.equal(percentile(xs, 95), 19);
  assert.equal(percentile(xs, 100), 20);
  assert.equal(percentile(xs, 0), 1);
  assert.equal(percentile([7], 95), 7);
  assert.ok(Number.isNaN(percentile([], 50)));
});

test("summarize reports count, extremes and mean", () => {
  assert.deepEqual(summarize([3, 1, 2]), { n: 3, p50: 2, p95: 3, min: 1, max: 3, mean: 2 });
  assert.equal(summarize([]).n, 0);
});

test("timed returns the value and a non-negative duration", async () => {
  const r = await timed(async () => 42);
  assert.equal(r.value, 42);
  assert.ok(r.ms >= 0);
});
