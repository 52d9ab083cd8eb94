import { test } from "node:test";
import assert from "node:assert/strict";
import { writeTar, splitUstarPath, paxRecord, TarType, FIXED_MTIME } from "./tar-writer.ts";

const field = (h: Buffer, off: number, len: number) => h.subarray(off, off + len).toString("utf8").replace(/\0.*$/s, "");
const octalField = (h: Buffer, off: number, len: number) => parseInt(field(h, off, len).trim(), 8);

/** A minimal reader: yields header fields and data for each entry. */
function readTar(buf: Buffer) {
  const out: { name: string; type: string; mode: number; uid: number; size: number; mtime: number; linkname: string; data: Buffer; checksumOk: boolean }[] = [];
  let off = 0;
  while (off + 512 <= buf.length) {
    const h = buf.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const size = octalField(h, 124, 12);
    const copy = Buffer.from(h);
    copy.fill(0x20, 148, 156);
    const sum = copy.reduce((a, b) => a + b, 0);
    const prefix = field(h, 345, 155);
    out.push({
      name: prefix ? `${prefix}/${field(h, 0, 100)}` : field(h, 0, 100),
      type: field(h, 156, 1), mode: octalField(h, 100, 8), uid: octalField(h, 108, 8), size,
      mtime: octalField(h, 136, 12), linkname: field(h, 157, 100),
      data: buf.subarray(off + 512, off + 512 + size), checksumOk: sum === octalField(h, 148, 8),
    });
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return { entries: out, end: off };
}

test("writes ustar headers with valid checksums, fixed mtime and padded data", () => {
  const tar = writeTar([
    { path: "etc", type: TarType.dir, mode: 0o755 },
    { path: "etc/passwd", type: TarType.file, mode: 0o644, data: Buffer.from("root:x:0:0::/root:/bin/sh\n") },
    { path: "bin/sh", type: TarType.hardlink, mode: 0o755, linkname: "bin/busybox" },
    { path: "lib64/ld.so", type: TarType.symlink, mode: 0o777, linkname: "/lib/ld.so" },
    { path: "usr/local/bin/nnp-euid", type: TarType.file, mode: 0o4755, uid: 0, data: Buffer.from("x") },
  ]);
  assert.equal(tar.length % 512, 0);
  const { entries, end } = readTar(tar);
  assert.deepEqual(entries.map((e) => [e.name, e.type]), [["etc/", "5"], ["etc/passwd", "0"], ["bin/sh", "1"], ["lib64/ld.so", "2"], ["usr/local/bin/nnp-euid", "0"]]);
  assert.ok(entries.every((e) => e.checksumOk && e.mtime === FIXED_MTIME));
  assert.equal(entries[1]!.data.toString(), "root:x:0:0::/root:/bin/sh\n");
  assert.equal(entries[2]!.linkname, "bin/busybox");
  assert.equal(entries[3]!.linkname, "/lib/ld.so");
  assert.equal(entries[4]!.mode, 0o4755, "setuid bit kept");
  assert.equal(tar.length - end, 1024, "archive ends with two zero blocks");
});

test("same entries give the same bytes", () => {
  const entries = [{ path: "a", type: TarType.file, mode: 0o644, data: Buffer.from("1") }] as const;
  assert.deepEqual(writeTar(entries), writeTar(entries));
});

test("long paths use the ustar prefix, and a PAX record when they cannot be split", () => {
  const medium = `${"d".repeat(60)}/${"e".repeat(60)}/file`;
  const split = splitUstarPath(medium)!;
  assert.equal(`${split.prefix}/${split.name}`, medium);
  assert.ok(split.prefix.length <= 155 && split.name.length <= 100);
  assert.equal(readTar(writeTar([{ path: medium, type: TarType.file, mode: 0o644 }])).entries[0]!.name, medium);
  const long = "x".repeat(120);
  assert.equal(splitUstarPath(long), undefined);
  const { entries } = readTar(writeTar([{ path: long, type: TarType.file, mode: 0o644, data: Buffer.from("z") }]));
  assert.equal(entries[0]!.type, "x");
  assert.equal(entries[0]!.data.toString(), paxRecord("path", long));
  assert.equal(entries[1]!.data.toString(), "z");
});

test("PAX record length counts its own digits", () => {
  const r = paxRecord("path", "a".repeat(93));
  assert.equal(Number(r.split(" ")[0]), Buffer.byteLength(r));
});

test("absolute paths are refused", () => {
  assert.throws(() => writeTar([{ path: "/etc/passwd", type: TarType.file, mode: 0o644 }]), /must be relative: \/etc\/passwd/);
});
