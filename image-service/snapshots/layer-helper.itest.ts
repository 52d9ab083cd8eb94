// FsSyncer against the real berth-layer helper (hack/build-helpers.sh): one process shared by
// concurrent syncfs requests, gone after the last release, and a failing helper never hangs.
// File records ('F'): byte-exact files with mode, owner and mtime; a file or symlink of the same
// name replaced, a directory refused; nothing created through a symlinked parent or outside.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { lstat, mkdir, mkdtemp, readdir, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { DEFAULT_LAYER_HELPER, encodeFile, FsSyncer, LayerHelper, LayerHelperError } from "./layer-helper.ts";

/** berth-layer processes whose parent is this process. */
function helperChildren(): number[] {
  const out: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = readFileSync(`/proc/${d}/stat`, "utf8");
      const fields = st.slice(st.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[1]) === process.pid && st.includes("(berth-layer)")) out.push(Number(d));
    } catch { /* gone while listed */ }
  }
  return out;
}

describe("FsSyncer", () => {
  it("serves concurrent syncfs requests from one berth-layer and ends it on the last release", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "berth-syncer-"));
    try {
      const s = new FsSyncer(DEFAULT_LAYER_HELPER, dir);
      s.acquire();
      s.acquire();
      await writeFile(path.join(dir, "f"), "data");
      const seen = new Set<number>();
      const all = Promise.all(Array.from({ length: 6 }, () => s.sync()));
      for (let i = 0; i < 3; i++) { for (const p of helperChildren()) seen.add(p); await new Promise((r) => setImmediate(r)); }
      await all;
      for (const p of helperChildren()) seen.add(p);
      assert.equal(seen.size, 1, `one helper process for all requests, saw ${[...seen].join(", ")}`);
      await s.sync(); // later requests reuse it
      assert.deepEqual(helperChildren(), [...seen]);
      await s.release();
      assert.equal(helperChildren().length, 1, "still in use by the second user");
      await s.release();
      assert.deepEqual(helperChildren(), [], "the last release ends the helper");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("a helper that cannot start fails every request with its reason, without hanging or leaving a process", async () => {
    const s = new FsSyncer(DEFAULT_LAYER_HELPER, "/nonexistent/berth-syncer-root");
    s.acquire();
    const results = await Promise.allSettled([s.sync(), s.sync(), s.sync()]);
    for (const r of results) {
      assert.equal(r.status, "rejected");
      assert.ok((r as PromiseRejectedResult).reason instanceof LayerHelperError, String((r as PromiseRejectedResult).reason));
      assert.match(((r as PromiseRejectedResult).reason as Error).message, /nonexistent/);
    }
    await s.release();
    assert.deepEqual(helperChildren(), []);
  });
});

describe("berth-layer file records", () => {
  const file = (p: string, data: string | Buffer, mode = 0o644, uid = 0, gid = 0, mtime = 1_600_000_000.5) =>
    encodeFile({ path: p, mode, uid, gid, mtime, data: Buffer.from(data) });

  it("creates files byte-exact with mode (setuid kept), owner and mtime; a batch of records is answered in full", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "berth-layer-file-"));
    try {
      await mkdir(path.join(dir, "d"));
      const h = new LayerHelper(DEFAULT_LAYER_HELPER, dir);
      const many = Array.from({ length: 500 }, (_, i) => file(`d/f${i}`, `data ${i}`));
      h.send(many);
      h.send([file("d/suid", "x", 0o4755, 1000, 6), file("empty", "")]);
      assert.ok(h.outstanding > 0);
      await h.settle();
      assert.equal(h.outstanding, 0);
      for (const i of [0, 250, 499]) assert.equal(readFileSync(path.join(dir, "d", `f${i}`), "utf8"), `data ${i}`);
      const st = await stat(path.join(dir, "d/suid"));
      assert.equal(st.mode & 0o7777, 0o4755);
      assert.deepEqual([st.uid, st.gid], [1000, 6]);
      const f0 = await stat(path.join(dir, "d/f0"), { bigint: true });
      assert.equal(f0.mtimeNs, 1_600_000_000_500_000_000n);
      assert.equal((await stat(path.join(dir, "empty"))).size, 0);
      await h.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("replaces a file or a symlink of the same name (the link's target untouched), refuses a directory", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "berth-layer-file-"));
    try {
      await writeFile(path.join(dir, "victim"), "untouched");
      await symlink(path.join(dir, "victim"), path.join(dir, "l"));
      await writeFile(path.join(dir, "f"), "old");
      const h = new LayerHelper(DEFAULT_LAYER_HELPER, dir);
      await h.run([file("f", "new"), file("l", "replaced")]);
      assert.equal(readFileSync(path.join(dir, "f"), "utf8"), "new");
      assert.ok((await lstat(path.join(dir, "l"))).isFile());
      assert.equal(readFileSync(path.join(dir, "l"), "utf8"), "replaced");
      assert.equal(readFileSync(path.join(dir, "victim"), "utf8"), "untouched");
      await mkdir(path.join(dir, "sub"));
      await assert.rejects(h.run([file("sub", "x")]), (e) => e instanceof LayerHelperError && /create "sub": a directory of that name exists/.test(e.message));
      assert.ok((await lstat(path.join(dir, "sub"))).isDirectory());
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("never creates through a symlinked parent or outside the layer", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "berth-layer-file-"));
    const outside = await mkdtemp(path.join(tmpdir(), "berth-layer-outside-"));
    try {
      const root = path.join(dir, "root");
      await mkdir(path.join(root, "real"), { recursive: true });
      await symlink("real", path.join(root, "in"));
      await symlink(outside, path.join(root, "out"));
      for (const [p, why] of [["in/f", /cannot open the parent directory beneath the layer/], ["out/f", /cannot open the parent directory beneath the layer/], ["../f", /empty, "\." or "\.\." component/], ["", /cannot replace the layer root/]] as const) {
        const h = new LayerHelper(DEFAULT_LAYER_HELPER, root);
        await assert.rejects(h.run([file(p, "x")]), (e) => e instanceof LayerHelperError && why.test(e.message), p);
      }
      assert.deepEqual(await readdir(path.join(root, "real")), []);
      assert.deepEqual(await readdir(outside), []);
      assert.deepEqual((await readdir(dir)).sort(), ["root"]);
    } finally {
      await rm(dir, { recursive: true, force: true });
      await rm(outside, { recursive: true, force: true });
    }
  });
});
