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

test("version: grows with each record added, replaced, deleted or loaded; reads and failed writes leave it", async () => {
  const dir = await mkdtemp(join(tmpdir(), "store-"));
  try {
    const s = new Store<{ id: string; name: string; n: number }>("container", dir);
    const v0 = s.version;
    await s.add({ id: "a1", name: "a", n: 1 });
    const v1 = s.version;
    assert.ok(v1 > v0);
    s.get("a1"); s.list(); s.tryGet("zz"); s.reserveName("x", "y");
    assert.equal(s.version, v1, "reads and names change nothing");
    await assert.rejects(s.add({ id: "a1", name: "b", n: 0 }));
    await assert.rejects(s.update("nope", () => {}));
    assert.equal(s.version, v1, "failed writes change nothing");
    await s.update("a1", (r) => { r.n = 2; });
    const v2 = s.version;
    assert.ok(v2 > v1);
    await s.delete("a1");
    assert.ok(s.version > v2);
    const v3 = s.version;
    await s.delete("a1"); // already gone
    assert.equal(s.version, v3);
    await s.add({ id: "b1", name: "b", n: 1 });
    const again = new Store<{ id: string; name: string; n: number }>("container", dir);
    const before = again.version;
    await again.load();
    assert.ok(again.version > before);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
