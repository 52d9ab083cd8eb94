import { test } from "node:test";
import assert from "node:assert/strict";
import { LayerBuilder } from "./layer-builder.ts";

test("adds parent directories and orders dirs, then files, then hard links", () => {
  const l = new LayerBuilder()
    .hardlink("/bin/[", "bin/busybox")
    .file("bin/busybox", "elf", 0o755)
    .symlink("lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
    .dir("tmp", 0o1777);
  assert.deepEqual(l.entries().map((e) => `${e.type}:${e.path}`), [
    "5:bin", "5:lib64", "5:tmp", "0:bin/busybox", "2:lib64/ld-linux-x86-64.so.2", "1:bin/[",
  ]);
  assert.equal(l.entries().find((e) => e.path === "tmp")!.mode, 0o1777);
});

test("a later entry for the same path replaces the earlier one", () => {
  const l = new LayerBuilder().file("etc/passwd", "a").file("/etc/passwd", "b");
  const files = l.entries().filter((e) => e.type === "0");
  assert.equal(files.length, 1);
  assert.equal(Buffer.from(files[0]!.data!).toString(), "b");
});

test("a hard link to a missing file is refused", () => {
  const l = new LayerBuilder().hardlink("bin/sh", "bin/busybox");
  assert.throws(() => l.entries(), /hard link bin\/sh points at bin\/busybox/);
});
