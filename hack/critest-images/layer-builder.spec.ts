import { test } from "node:test";
import assert from "node:assert/strict";
import { FIXED_MTIME, LayerBuilder, TarType, writeTar } from "./layer-builder.ts";
import { readTar } from "../registry/tar-writer.ts";

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

test("a layer's tar: fixed mtime, permission bits only, directories end in '/', same entries give the same bytes", () => {
  const entries = new LayerBuilder().file("etc/passwd", "root:x:0:0::/root:/bin/sh\n").file("usr/bin/su", "x", 0o104755).hardlink("bin/su", "usr/bin/su").entries();
  const tar = writeTar(entries);
  assert.deepEqual(tar, writeTar(entries));
  const read = readTar(tar).entries;
  assert.deepEqual(read.map((e) => [e.name, e.type]), [["bin/", "5"], ["etc/", "5"], ["usr/", "5"], ["usr/bin/", "5"], ["etc/passwd", "0"], ["usr/bin/su", "0"], ["bin/su", "1"]]);
  assert.ok(read.every((e) => e.checksumOk && e.mtime === FIXED_MTIME));
  assert.equal(read.find((e) => e.name === "usr/bin/su")!.mode, 0o4755);
  assert.equal(read.find((e) => e.name === "etc/passwd")!.data.toString(), "root:x:0:0::/root:/bin/sh\n");
  assert.equal(read.find((e) => e.name === "bin/su")!.linkname, "usr/bin/su");
  assert.throws(() => writeTar([{ path: "/etc/passwd", type: TarType.file, mode: 0o644 }]), /must be relative: \/etc\/passwd/);
});
