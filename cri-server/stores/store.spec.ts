import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Store } from "./store.ts";
import { BerthError, Code } from "../../oci-runtime/foundation/errdefs.ts";

const isCode = (code: number) => (e: unknown) => e instanceof BerthError && e.code === code;

test("add, get by prefix, update, delete and reload", async () => {
  const dir = await mkdtemp(join(tmpdir(), "store-"));
  try {
    const s = new Store<{ id: string; name: string; n: number }>("container", dir);
    await s.add({ id: "abc123", name: "a", n: 1 });
    await s.add({ id: "abd456", name: "b", n: 2 });
    await assert.rejects(s.add({ id: "abc123", name: "c", n: 0 }), isCode(Code.ALREADY_EXISTS));
    await assert.rejects(s.add({ id: "zzz", name: "a", n: 0 }), (e: Error) => isCode(Code.ALREADY_EXISTS)(e) && /reserved by container abc123/.test(e.message));
    assert.equal(s.get("abc").n, 1);
    assert.throws(() => s.get("ab"), isCode(Code.INVALID_ARGUMENT));
    assert.throws(() => s.get("nope"), isCode(Code.NOT_FOUND));
    assert.throws(() => s.get(""), isCode(Code.INVALID_ARGUMENT));
    await s.update("abc123", (r) => { r.n = 10; });
    await s.delete("abd456");
    await writeFile(join(dir, ".x.json.1234.tmp"), "partial");
    await writeFile(join(dir, "broken.json"), "{");
    const again = new Store<{ id: string; name: string; n: number }>("container", dir);
    const bad: string[] = [];
    const recs = await again.load((f) => bad.push(f));
    assert.deepEqual(recs.map((r) => [r.id, r.n]), [["abc123", 10]]);
    assert.equal(bad.length, 1);
    assert.ok(!(await readdir(dir)).some((f) => f.endsWith(".tmp")), "leftover temp files are removed");
    assert.equal(again.idOfName("a"), "abc123");
    assert.equal(again.idOfName("b"), undefined);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("withLock serialises work per id", async () => {
  const s = new Store<{ id: string; name: string }>("sandbox", "/nonexistent");
  const order: number[] = [];
  await Promise.all([
    s.withLock("x", async () => { await new Promise((r) => setTimeout(r, 20)); order.push(1); }),
    s.withLock("x", async () => { order.push(2); }),
  ]);
  assert.deepEqual(order, [1, 2]);
});

test("an update racing a delete never brings the record back", async () => {
  const dir = await mkdtemp(join(tmpdir(), "store-"));
  try {
    const s = new Store<{ id: string; name: string; n: number }>("container", dir);
    await s.add({ id: "x", name: "x", n: 0 });
    const results = await Promise.allSettled([s.update("x", (r) => { r.n = 1; }), s.delete("x"), s.update("x", (r) => { r.n = 2; })]);
    assert.equal(results[0]!.status, "fulfilled");
    assert.equal(results[2]!.status, "rejected");
    assert.equal(s.tryGet("x"), undefined);
    assert.deepEqual((await readdir(dir)).filter((f) => !f.startsWith(".")), []);
    const again = new Store<{ id: string; name: string; n: number }>("container", dir);
    assert.deepEqual(await again.load(), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
