import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { test } from "node:test";
import { PassThrough } from "node:stream";
import { readResizeEvents, resizeQueue, splitJsonObjects } from "./resize-reader.ts";

test("splitJsonObjects cuts complete objects and keeps the rest", () => {
  assert.deepEqual(splitJsonObjects('{"Width":1,"Height":2}\n{"Width":3'), { objects: ['{"Width":1,"Height":2}'], rest: '{"Width":3' });
  assert.deepEqual(splitJsonObjects('{"a":"}"}{"b":{}}'), { objects: ['{"a":"}"}', '{"b":{}}'], rest: "" });
});

test("readResizeEvents yields sizes across chunk boundaries and skips invalid ones", async () => {
  const src = Readable.from([Buffer.from('{"Width":80,"He'), Buffer.from('ight":24}\n{"Width":-1,"Height":5}{"Width":120,"Height":40}')]);
  const got = [];
  for await (const s of readResizeEvents(src)) got.push(s);
  assert.deepEqual(got, [{ width: 80, height: 24 }, { width: 120, height: 40 }]);
});

test("resizeQueue drains its source even when nobody reads, keeping the latest sizes", async () => {
  const src = new PassThrough({ highWaterMark: 16 });
  const q = resizeQueue(src, 2);
  for (let i = 1; i <= 1000; i++) src.write(`{"Width":${i},"Height":1}`);
  src.end();
  const got = [];
  for await (const s of q) got.push(s.width);
  assert.deepEqual(got, [999, 1000]);
});
