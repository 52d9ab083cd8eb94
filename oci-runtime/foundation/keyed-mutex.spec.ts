import { test } from "node:test";
import assert from "node:assert/strict";
import { KeyedMutex } from "./keyed-mutex.ts";

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
