import { test } from "node:test";
import assert from "node:assert/strict";
import { LayerBuilder } from "./layer-builder.ts";
import { parseLdd } from "./debian.ts";

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

test("parseLdd reads libraries and the interpreter", () => {
  const out = [
    "\tlinux-vdso.so.1 (0x00007ffc)",
    "\tlibresolv.so.2 => /lib/x86_64-linux-gnu/libresolv.so.2 (0x00007f29)",
    "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f29)",
    "\t/lib64/ld-linux-x86-64.so.2 (0x00007f29)",
  ].join("\n");
  assert.deepEqual(parseLdd(out), {
    libs: [
      { name: "libresolv.so.2", hostPath: "/lib/x86_64-linux-gnu/libresolv.so.2" },
      { name: "libc.so.6", hostPath: "/lib/x86_64-linux-gnu/libc.so.6" },
    ],
    interpreter: "/lib64/ld-linux-x86-64.so.2",
  });
  assert.throws(() => parseLdd("\tlibfoo.so.1 => not found"), /missing library: libfoo.so.1 => not found/);
});
