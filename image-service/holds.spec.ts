import { test } from "node:test";
import assert from "node:assert/strict";
import { Holds } from "./holds.ts";

const later = () => { let resolve!: () => void; const p = new Promise<void>((r) => { resolve = r; }); return { p, resolve }; };

test("Holds: counted holds; a key is removed only when no pull holds it", async () => {
  const h = new Holds();
  await h.hold(["a", "b"]);
  await h.hold(["a"]);
  let removed = 0;
  const remove = async () => { removed++; };
  assert.equal(await h.removeUnheld("a", remove), false);
  h.release(["a"]);
  assert.equal(await h.removeUnheld("a", remove), false, "still held once");
  h.release(["a", "b"]);
  assert.equal(h.size, 0);
  assert.equal(await h.removeUnheld("a", remove), true);
  assert.equal(removed, 1);
  h.release(["never held"]);
  assert.equal(h.size, 0, "a stray release counts nothing below zero");
});

test("Holds: a hold of a key being removed resolves only once the removal has ended", async () => {
  const h = new Holds();
  const gate = later();
  let gone = false;
  const removing = h.removeUnheld("k", async () => { await gate.p; gone = true; });
  let resolved = false;
  const held = h.hold(["k", "other"]).then(() => { resolved = true; assert.ok(gone, "the pull looks only after the removal"); });
  assert.ok(h.held("k"), "counted at once");
  await new Promise((r) => setImmediate(r));
  assert.equal(resolved, false, "waits for the removal");
  gate.resolve();
  assert.equal(await removing, true);
  await held;
  assert.equal(resolved, true);
  // Held now: the next GC leaves it.
  assert.equal(await h.removeUnheld("k", async () => assert.fail("removed a held key")), false);
});

test("Holds: a failed removal releases the waiting hold too, and the key can be removed again", async () => {
  const h = new Holds();
  const gate = later();
  const removing = h.removeUnheld("k", async () => { await gate.p; throw new Error("EIO"); });
  assert.equal(await h.removeUnheld("k", async () => assert.fail("two removals at once")), false, "one removal of a key at a time");
  const held = h.hold(["k"]);
  gate.resolve();
  await assert.rejects(removing, /EIO/);
  await held;
  h.release(["k"]);
  assert.equal(await h.removeUnheld("k", async () => {}), true);
});
