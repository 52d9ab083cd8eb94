import { test } from "node:test";
import assert from "node:assert/strict";
import { KeyedMutex, Mutex } from "./keyed-mutex.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("runs of one key are serial, even after a rejection; other keys do not wait", async () => {
  const m = new KeyedMutex();
  const order: string[] = [];
  const a1 = m.run("a", async () => { await sleep(30); order.push("a1"); throw new Error("a1 failed"); });
  const a2 = m.run("a", async () => { order.push("a2"); return 2; });
  const b1 = m.run("b", async () => { order.push("b1"); return 1; });
  await assert.rejects(a1, /a1 failed/);
  assert.equal(await a2, 2);
  assert.equal(await b1, 1);
  assert.deepEqual(order, ["b1", "a1", "a2"]);
  await sleep(0);
  assert.equal(m.size, 0, "drained keys are forgotten");
});

test("Mutex: sections run one at a time in call order, and a rejection does not block the next", async () => {
  const m = new Mutex();
  const order: string[] = [];
  let inside = 0, peak = 0;
  const section = (name: string, fail = false) => m.run(async () => {
    inside++; peak = Math.max(peak, inside);
    await sleep(5);
    order.push(name);
    inside--;
    if (fail) throw new Error(`${name} failed`);
    return name;
  });
  const [a, b, c] = [section("a"), section("b", true), section("c")];
  assert.equal(await a, "a");
  await assert.rejects(b, /b failed/);
  assert.equal(await c, "c");
  assert.deepEqual(order, ["a", "b", "c"]);
  assert.equal(peak, 1);
});
