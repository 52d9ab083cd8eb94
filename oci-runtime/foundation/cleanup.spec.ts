import { test } from "node:test";
import assert from "node:assert/strict";
import { Cleanup } from "./cleanup.ts";
import { createLogger } from "./log.ts";

test("undos run in reverse, all of them, even when one throws", async () => {
  const lines: string[] = [];
  const c = new Cleanup(createLogger({}, (l) => lines.push(l)));
  const order: string[] = [];
  c.add("a", () => { order.push("a"); });
  c.add("b", async () => { order.push("b"); throw new Error("boom"); });
  c.add("c", () => { order.push("c"); });
  await c.unwind();
  assert.deepEqual(order, ["c", "b", "a"]);
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /rollback step failed.*"step":"b"/);
  await c.unwind();
  assert.deepEqual(order, ["c", "b", "a"], "a second unwind does nothing");
});

test("commit forgets the undos", async () => {
  const c = new Cleanup(createLogger({}, () => {}));
  let ran = false;
  c.add("x", () => { ran = true; });
  c.commit();
  await c.unwind();
  assert.equal(ran, false);
});
