import { test } from "node:test";
import assert from "node:assert/strict";
import { waitFor, waitUntil, type WaitClock } from "./wait.ts";

/** A clock whose sleeps advance time at once, recording each pause. */
function fakeClock(): WaitClock & { t: number; sleeps: number[] } {
  const c = {
    t: 0, sleeps: [] as number[],
    now: () => c.t,
    sleep: async (ms: number, signal?: AbortSignal) => { signal?.throwIfAborted(); c.sleeps.push(ms); c.t += ms; },
  };
  return c;
}

test("waitFor returns the first defined answer", async () => {
  const clock = fakeClock();
  let n = 0;
  const v = await waitFor(() => (++n === 3 ? "done" : undefined), { timeoutMs: 1000, intervalMs: 10, clock });
  assert.equal(v, "done");
  assert.equal(n, 3);
  assert.deepEqual(clock.sleeps, [10, 10]);
});

test("waitFor gives up after timeoutMs, never sleeping past it", async () => {
  const clock = fakeClock();
  let n = 0;
  const v = await waitFor(() => { n++; return undefined; }, { timeoutMs: 25, intervalMs: 10, clock });
  assert.equal(v, undefined);
  assert.deepEqual(clock.sleeps, [10, 10, 5]);
  assert.equal(n, 4, "probes once more at the deadline");
});

test("waitFor probes once with a zero timeout", async () => {
  const clock = fakeClock();
  assert.equal(await waitFor(() => 7, { timeoutMs: 0, clock }), 7);
  assert.equal(await waitFor(() => undefined, { timeoutMs: 0, clock }), undefined);
  assert.deepEqual(clock.sleeps, []);
});

test("waitFor refuses an unbounded wait", async () => {
  await assert.rejects(waitFor(() => 1, { timeoutMs: Infinity }), /finite/);
  await assert.rejects(waitFor(() => 1, { timeoutMs: -1 }), /finite/);
});

test("an aborted signal rejects the wait with its reason", async () => {
  const ac = new AbortController();
  ac.abort(new Error("caller gone"));
  await assert.rejects(waitFor(() => undefined, { timeoutMs: 1000, signal: ac.signal }), /caller gone/);
  const ac2 = new AbortController();
  const p = waitFor(() => undefined, { timeoutMs: 60_000, intervalMs: 20, signal: ac2.signal });
  setTimeout(() => ac2.abort(new Error("deadline")), 30);
  await assert.rejects(p, /deadline/);
});

test("waitUntil reports whether the condition held in time (real clock)", async () => {
  const t0 = Date.now();
  assert.equal(await waitUntil(() => Date.now() - t0 > 30, { timeoutMs: 2000, intervalMs: 5 }), true);
  assert.equal(await waitUntil(() => false, { timeoutMs: 30, intervalMs: 5 }), false);
});
