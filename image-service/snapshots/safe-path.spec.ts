import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { BreakoutError, cleanEntryName, DirResolver } from "./safe-path.ts";
import { chainIds } from "./snapshotter.ts";

describe("cleanEntryName", () => {
  it("cleans ./, //, . and inner ..", () => {
    assert.deepEqual(cleanEntryName("./a//b/./c"), ["a", "b", "c"]);
    assert.deepEqual(cleanEntryName("a/../b/"), ["b"]);
    assert.deepEqual(cleanEntryName("./"), []);
  });
  it("refuses absolute names and escapes, naming the entry", () => {
    assert.throws(() => cleanEntryName("/etc/passwd"), (e: BreakoutError) => e.entry === "/etc/passwd" && /absolute/.test(e.message));
    assert.throws(() => cleanEntryName("../x"), /escapes the layer root/);
    assert.throws(() => cleanEntryName("a/../../x"), /escapes/);
  });
});

describe("DirResolver", () => {
  it("follows symlinked parents inside the root and refuses escapes", async () => {
    const root = await mkdtemp(path.join(tmpdir(), "berth-safe-"));
    try {
      await mkdir(path.join(root, "usr/lib"), { recursive: true });
      await symlink("/usr/lib", path.join(root, "lib"));
      await symlink("../../..", path.join(root, "up"));
      await symlink("usr/missing", path.join(root, "dangling"));
      const r = new DirResolver(root);
      assert.equal(await r.resolve(["lib"], "lib/x", true), "usr/lib");
      assert.equal(await r.resolve(["new", "dir"], "new/dir/x", true), "new/dir");
      await assert.rejects(r.resolve(["up"], "up/x", true), /outside the layer root/);
      await assert.rejects(r.resolve(["dangling"], "dangling/x", true), /does not exist in this layer/);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe("chainIds", () => {
  it("chains diff ids", () => {
    const a = "sha256:" + "a".repeat(64);
    const b = "sha256:" + "b".repeat(64);
    const [c0, c1] = chainIds([a, b]);
    assert.equal(c0, a);
    assert.match(c1!, /^sha256:[a-f0-9]{64}$/);
    assert.notEqual(c1, b);
    assert.deepEqual(chainIds([]), []);
  });
});
