import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mapLimit, Semaphore } from "./semaphore.ts";

const tick = () => new Promise((r) => setImmediate(r));

describe("Semaphore", () => {
  it("never runs more than n at once, and mapLimit keeps the input order", async () => {
    let active = 0, peak = 0;
    const out = await mapLimit([1, 2, 3, 4, 5, 6, 7], 3, async (x) => {
      active++; peak = Math.max(peak, active);
      await tick();
      active--;
      return x * 2;
    });
    assert.deepEqual(out, [2, 4, 6, 8, 10, 12, 14]);
    assert.equal(peak, 3);
  });

  it("hands a freed slot to the longest waiter, before a newcomer", async () => {
    const sem = new Semaphore(1);
    const order: string[] = [];
    let release!: () => void;
    const first = sem.run(() => new Promise<void>((r) => { release = r; order.push("first"); }));
    const second = sem.run(async () => { order.push("second"); });
    await tick();
    assert.equal(sem.waiting, 1);
    release();
    const third = sem.run(async () => { order.push("third"); });
    await Promise.all([first, second, third]);
    assert.deepEqual(order, ["first", "second", "third"]);
  });

  it("a section that gives its slot back early lets the next one in while it goes on, and never gives it back twice", async () => {
    const sem = new Semaphore(1);
    const order: string[] = [];
    let finish!: () => void;
    let released!: () => void;
    const first = sem.run(async (release) => {
      order.push("first starts");
      released = release;
      await new Promise<void>((r) => { finish = r; });
      release(); // again: nothing more is given back
      order.push("first ends");
    });
    const second = sem.run(async () => { order.push("second"); });
    const third = sem.run(async () => { order.push("third"); await tick(); });
    await tick();
    assert.equal(sem.waiting, 2);
    released();
    await second;
    assert.deepEqual(order, ["first starts", "second", "third"], "the slot went to the longest waiter, then the next");
    assert.equal(sem.waiting, 0);
    // first still runs: its release and its end free no slot, so at most 1 other section runs.
    let inside = 0, peak = 0;
    const more = [1, 2, 3].map(() => sem.run(async () => { inside++; peak = Math.max(peak, inside); await tick(); inside--; }));
    finish();
    await Promise.all([first, third, ...more]);
    assert.equal(peak, 1);
    assert.ok(order.includes("first ends"));
  });

  it("frees the slot when a section throws", async () => {
    const sem = new Semaphore(1);
    await assert.rejects(sem.run(() => Promise.reject(new Error("boom"))), /boom/);
    assert.equal(await sem.run(async () => 7), 7);
  });

  it("refuses a size that is not a positive integer, naming it", () => {
    for (const n of [0, -1, 1.5, Number.NaN]) assert.throws(() => new Semaphore(n), new RegExp(`positive integer, got ${n}`));
    assert.throws(() => mapLimit([1], 0, async (x) => x), /positive integer, got 0/);
  });
});
