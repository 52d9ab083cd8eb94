import { test } from "node:test";
import assert from "node:assert/strict";
import { buildTar, paxRecord, readTar } from "./tar-writer.ts";

test("writes ustar headers with valid checksums and padded data, and ends with two zero blocks", () => {
  const tar = buildTar([
    { name: "etc/", type: "dir" },
    { name: "etc/passwd", data: "root:x:0:0::/root:/bin/sh\n", uid: 7, gid: 8, mtime: 1704067200 },
    { name: "bin/sh", type: "hardlink", linkname: "bin/busybox" },
    { name: "lib64/ld.so", type: "symlink", linkname: "/lib/ld.so", mode: 0o777 },
    { name: "dev/null", type: "char", devmajor: 1, devminor: 3 },
    { name: "usr/local/bin/nnp-euid", mode: 0o4755, data: "x" },
  ]);
  assert.equal(tar.length % 512, 0);
  const { entries, end } = readTar(tar);
  assert.deepEqual(entries.map((e) => [e.name, e.type]), [["etc/", "5"], ["etc/passwd", "0"], ["bin/sh", "1"], ["lib64/ld.so", "2"], ["dev/null", "3"], ["usr/local/bin/nnp-euid", "0"]]);
  assert.ok(entries.every((e) => e.checksumOk));
  assert.equal(entries[0]!.mode, 0o755, "directories default to 0755");
  assert.equal(entries[1]!.data.toString(), "root:x:0:0::/root:/bin/sh\n");
  assert.deepEqual([entries[1]!.uid, entries[1]!.gid, entries[1]!.mtime, entries[1]!.mode], [7, 8, 1704067200, 0o644]);
  assert.equal(entries[2]!.linkname, "bin/busybox");
  assert.equal(entries[3]!.linkname, "/lib/ld.so");
  assert.equal(entries[4]!.devmajor, 1);
  assert.equal(entries[5]!.mode, 0o4755, "setuid bit kept");
  assert.equal(tar.length - end, 1024);
});

test("same entries give the same bytes", () => {
  const entries = [{ name: "a", data: "1" }, { name: "b/", type: "dir" as const }];
  assert.deepEqual(buildTar(entries), buildTar(entries));
});

test("long names and link names, xattrs and raw records go into a PAX header before the entry", () => {
  const long = `${"d".repeat(60)}/${"e".repeat(60)}/file`;
  const link = "t".repeat(120);
  const { entries } = readTar(buildTar([
    { name: long, data: "z", xattrs: { "user.k": "v" } },
    { name: "l", type: "symlink", linkname: link, pax: { "LIBARCHIVE.xattr.user.x": "eQ" } },
  ]));
  assert.equal(entries[0]!.type, "x");
  assert.equal(entries[0]!.data.toString(), paxRecord("path", Buffer.from(long)).toString() + paxRecord("SCHILY.xattr.user.k", Buffer.from("v")).toString());
  assert.equal(entries[1]!.data.toString(), "z");
  assert.equal(entries[2]!.type, "x");
  assert.equal(entries[2]!.data.toString(), paxRecord("linkpath", Buffer.from(link)).toString() + paxRecord("LIBARCHIVE.xattr.user.x", Buffer.from("eQ")).toString());
  assert.equal(entries[3]!.linkname, link.slice(0, 99));
});

test("PAX record length counts its own digits", () => {
  for (const n of [1, 92, 93, 94, 990, 995]) {
    const r = paxRecord("path", Buffer.from("a".repeat(n))).toString();
    assert.equal(Number(r.split(" ")[0]), Buffer.byteLength(r), `value of ${n} bytes`);
  }
});
