import { test } from "node:test";
import assert from "node:assert/strict";
import { CHUNK, writeChunks } from "./stream-chunks.ts";

test("items are written in order, in chunks of CHUNK, and nothing for an empty list", async () => {
  const items = Array.from({ length: CHUNK * 2 + 5 }, (_, i) => i);
  const chunks: number[][] = [];
  await writeChunks(items, async (c) => { chunks.push(c); });
  assert.deepEqual(chunks.map((c) => c.length), [CHUNK, CHUNK, 5]);
  assert.deepEqual(chunks.flat(), items);
  const none: number[][] = [];
  await writeChunks([], async (c) => { none.push(c); });
  assert.deepEqual(none, []);
});
