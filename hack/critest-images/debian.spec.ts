import { test } from "node:test";
import assert from "node:assert/strict";
import { parseAptShow, parseLdd } from "./debian.ts";

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

test("parseAptShow takes the first version of each package", () => {
  const out = [
    "Package: busybox", "Version: 1:1.35.0-4+deb12u1+b1", "Architecture: amd64", "",
    "Package: nginx", "Source: nginx", "Version: 1.22.1-9+deb12u11", "Description: small, powerful", " multi-line", "",
    "Package: nginx", "Version: 1.22.1-9", "",
  ].join("\n");
  assert.deepEqual([...parseAptShow(out)], [["busybox", "1:1.35.0-4+deb12u1+b1"], ["nginx", "1.22.1-9+deb12u11"]]);
});
