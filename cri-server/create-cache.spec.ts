import { test } from "node:test";
import assert from "node:assert/strict";
import { CreateCache } from "./create-cache.ts";

const tick = () => new Promise((r) => setImmediate(r));

test("a settled create is kept for the ttl, then dropped with its timer", async () => {
  const cache = new CreateCache(30);
  const entry = cache.track("pod-a", "fp", Promise.resolve("id-1"));
  await tick();
  assert.equal(cache.get("pod-a"), entry);
  assert.deepEqual(cache.size, { entries: 1, timers: 1 });
  await new Promise((r) => setTimeout(r, 80));
  assert.equal(cache.get("pod-a"), undefined);
  assert.deepEqual(cache.size, { entries: 0, timers: 0 });
});

test("forget drops the entry and clears its expiry timer (a removed pod is not held until the ttl)", async () => {
  const cache = new CreateCache(600_000);
  cache.track("pod-a", "fp", Promise.resolve("id-1"));
  await tick();
  assert.deepEqual(cache.size, { entries: 1, timers: 1 });
  cache.forget("pod-a");
  assert.equal(cache.get("pod-a"), undefined);
  assert.deepEqual(cache.size, { entries: 0, timers: 0 });
});

test("forgetting a create in progress arms no timer when it settles; a failed create leaves nothing", async () => {
  const cache = new CreateCache(600_000);
  let finish!: (id: string) => void;
  cache.track("pod-a", "fp", new Promise<string>((r) => { finish = r; }));
  cache.forget("pod-a");
  finish("id-1");
  await tick();
  assert.deepEqual(cache.size, { entries: 0, timers: 0 });
  const failed = Promise.reject(new Error("boom"));
  cache.track("pod-b", "fp", failed);
  await failed.catch(() => {});
  await tick();
  assert.deepEqual(cache.size, { entries: 0, timers: 0 });
});

test("tracking a name again replaces the earlier entry and its timer", async () => {
  const cache = new CreateCache(600_000);
  cache.track("pod-a", "fp1", Promise.resolve("id-1"));
  await tick();
  const second = cache.track("pod-a", "fp2", Promise.resolve("id-2"));
  await tick();
  assert.equal(cache.get("pod-a"), second);
  assert.deepEqual(cache.size, { entries: 1, timers: 1 });
  cache.forget("pod-a");
  assert.deepEqual(cache.size, { entries: 0, timers: 0 });
});

test("requestFingerprint: the SHA-256 of the request's JSON with sorted keys, small (JavaScript) or large (node:crypto)", async () => {
  const { createHash } = await import("node:crypto");
  const { requestFingerprint } = await import("./create-cache.ts");
  const { JS_HASH_MAX } = await import("../oci-runtime/foundation/sha256.ts");
  const small = { b: 1, a: { d: [3, { f: "é", e: 2 }], c: "x" } };
  assert.equal(requestFingerprint(small), createHash("sha256").update('{"a":{"c":"x","d":[3,{"e":2,"f":"é"}]},"b":1}').digest("hex"));
  assert.equal(requestFingerprint(small), requestFingerprint({ a: { c: "x", d: [3, { e: 2, f: "é" }] }, b: 1 }), "map order does not count");
  const env = Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`K${i}`, "v".repeat(20)]));
  const text = JSON.stringify(Object.fromEntries(Object.keys(env).sort().map((k) => [k, env[k]])));
  assert.ok(text.length > JS_HASH_MAX);
  assert.equal(requestFingerprint(env), createHash("sha256").update(text).digest("hex"));
});
