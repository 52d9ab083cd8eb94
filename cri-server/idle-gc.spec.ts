import { test } from "node:test";
import assert from "node:assert/strict";
import { IdleGc } from "./idle-gc.ts";

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("a removal arms one collection once removals stop; other RPCs and failures arm none", async () => {
  const calls: unknown[] = [];
  const g = new IdleGc({ gc: (o) => { calls.push(o); }, idleMs: 200, minIntervalMs: 0 });
  g.observe("RunPodSandbox", 0);
  g.observe("ListContainers", 0);
  g.observe("RemoveContainer", 5); // failed
  await wait(300);
  assert.equal(calls.length, 0);
  // A burst of removals (each well within idleMs of the one before): one collection, idleMs after the last.
  for (const m of ["StopPodSandbox", "RemoveContainer", "RemovePodSandbox"]) { g.observe(m, 0); await wait(20); }
  assert.equal(calls.length, 0, "not while removals go on");
  await wait(400);
  assert.deepEqual(calls, [{ type: "major", execution: "sync", flavor: "last-resort" }]);
  assert.equal(g.collections, 1);
  g.close();
});

test("at most one collection per minIntervalMs: a removal soon after waits for the rest of it", async () => {
  let now = 0;
  const at: number[] = [];
  const g = new IdleGc({ gc: () => { at.push(now); }, idleMs: 10, minIntervalMs: 520, now: () => now });
  g.observe("RemovePodSandbox", 0);
  await wait(100);
  assert.deepEqual(at, [0]);
  now = 20; // 20 ms after the collection: the next one waits 500 ms more, not 10
  g.observe("RemovePodSandbox", 0);
  await wait(100);
  assert.equal(at.length, 1);
  now = 600;
  await wait(700);
  assert.deepEqual(at, [0, 600]);
  g.close();
});

test("started() arms one collection, reported as after start-up; a removal meanwhile takes it over", async () => {
  const seen: string[] = [];
  const g = new IdleGc({ gc: () => {}, idleMs: 50, minIntervalMs: 0, onCollect: (_ms, after) => { seen.push(after); } });
  g.started();
  await wait(200);
  assert.deepEqual(seen, ["start-up"]);
  g.started();
  g.observe("RemovePodSandbox", 0);
  await wait(200);
  assert.deepEqual(seen, ["start-up", "removals"]);
  g.close();
});

test("without --expose-gc nothing is armed; close() drops a pending collection", async () => {
  const off = new IdleGc({ gc: undefined, idleMs: 1 });
  assert.equal(off.enabled, false);
  off.observe("RemovePodSandbox", 0);
  off.started();
  await wait(10);
  assert.equal(off.collections, 0);
  let n = 0;
  const g = new IdleGc({ gc: () => { n++; }, idleMs: 20 });
  g.observe("RemoveContainer", 0);
  g.close();
  await wait(100);
  assert.equal(n, 0);
});

test("after each collection, the trim; onCollect says what it did (undefined without one)", async () => {
  const order: string[] = [];
  const seen: (boolean | undefined)[] = [];
  const g = new IdleGc({
    gc: () => { order.push("gc"); }, trim: () => { order.push("trim"); return true; }, idleMs: 10, minIntervalMs: 0,
    onCollect: (_ms, _after, trimmed) => { seen.push(trimmed); },
  });
  g.started();
  await wait(100);
  g.observe("RemoveContainer", 0);
  await wait(100);
  assert.deepEqual(order, ["gc", "trim", "gc", "trim"]);
  assert.deepEqual(seen, [true, true]);
  g.close();
  const plain: (boolean | undefined)[] = [];
  const h = new IdleGc({ gc: () => {}, idleMs: 10, minIntervalMs: 0, onCollect: (_ms, _after, trimmed) => { plain.push(trimmed); } });
  h.started();
  await wait(100);
  assert.deepEqual(plain, [undefined]);
  h.close();
  // Without gc (no --expose-gc) nothing runs, the trim neither.
  let trims = 0;
  const none = new IdleGc({ gc: undefined, trim: () => { trims++; return true; }, idleMs: 10 });
  none.started();
  await wait(100);
  assert.equal(trims, 0);
  none.close();
});
