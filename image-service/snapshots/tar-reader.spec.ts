import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { buildTar } from "../../hack/registry/tar-writer.ts";
import { globalPaxFlood, globalPaxKeyFlood, oversizedLongName, oversizedPax } from "../../hack/registry/attack-layers.ts";
import { LayerLimitError, MAX_EXTENDED_HEADER, parsePax, readTar, TarError, type TarEntry, xattrProblem } from "./tar-reader.ts";

async function readAll(buf: Buffer, chunk = 7): Promise<{ e: TarEntry; data: string }[]> {
  const chunks: Buffer[] = [];
  for (let i = 0; i < buf.length; i += chunk) chunks.push(buf.subarray(i, i + chunk));
  const out: { e: TarEntry; data: string }[] = [];
  for await (const { entry, body } of readTar(chunks)) {
    let data = "";
    if (entry.type === "0") for await (const c of body()) data += c.toString();
    out.push({ e: entry, data });
  }
  return out;
}

function gnuHeader(name: string, type: string, size: number): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100);
  h.write("0000644\0", 100);
  h.write("0000000\0", 108);
  h.write("0000000\0", 116);
  h.write(size.toString(8).padStart(11, "0") + "\0", 124);
  h.write("00000000000\0", 136);
  h.write("        ", 148);
  h.write(type, 156);
  h.write("ustar  \0", 257, "latin1");
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, "0") + "\0 ", 148);
  return h;
}
const padded = (b: Buffer) => Buffer.concat([b, Buffer.alloc((512 - (b.length % 512)) % 512)]);

describe("readTar", () => {
  it("reads ustar entries of every type with their metadata", async () => {
    const tar = buildTar([
      { name: "d/", type: "dir", mode: 0o2755, uid: 5, gid: 6, mtime: 1234 },
      { name: "d/f", data: "x".repeat(1000), mode: 0o4755 },
      { name: "d/h", type: "hardlink", linkname: "d/f" },
      { name: "d/s", type: "symlink", linkname: "/abs/target" },
      { name: "d/c", type: "char", devmajor: 1, devminor: 3 },
      { name: "d/p", type: "fifo" },
    ]);
    const got = await readAll(tar);
    assert.deepEqual(got.map((g) => [g.e.name, g.e.type]), [["d/", "5"], ["d/f", "0"], ["d/h", "1"], ["d/s", "2"], ["d/c", "3"], ["d/p", "6"]]);
    assert.equal(got[0]!.e.mode, 0o2755);
    assert.deepEqual([got[0]!.e.uid, got[0]!.e.gid, got[0]!.e.mtime], [5, 6, 1234]);
    assert.equal(got[1]!.data, "x".repeat(1000));
    assert.equal(got[1]!.e.mode, 0o4755);
    assert.equal(got[2]!.e.linkname, "d/f");
    assert.equal(got[3]!.e.linkname, "/abs/target");
    assert.deepEqual([got[4]!.e.devmajor, got[4]!.e.devminor], [1, 3]);
  });

  it("applies pax path, linkpath and byte-exact xattrs", async () => {
    const long = "a/".repeat(80) + "file";
    const bin = Buffer.from([0, 1, 0xff, 0x3d, 0x0a]);
    const got = await readAll(buildTar([
      { name: long, data: "hi", xattrs: { "security.capability": bin, "user.x": "y" } },
      { name: "l", type: "symlink", linkname: "t/".repeat(70) },
    ]));
    assert.equal(got[0]!.e.name, long);
    assert.deepEqual(got[0]!.e.xattrs.get("security.capability"), bin);
    assert.equal(got[0]!.e.xattrs.get("user.x")!.toString(), "y");
    assert.equal(got[1]!.e.linkname, "t/".repeat(70));
    assert.equal(got[1]!.e.xattrs.size, 0); // pax records apply to one entry only
  });

  it("reads GNU long names and long link names", async () => {
    const name = "n".repeat(150);
    const link = "k".repeat(130);
    const tar = Buffer.concat([
      gnuHeader("././@LongLink", "L", name.length + 1), padded(Buffer.from(name + "\0")),
      gnuHeader("././@LongLink", "K", link.length + 1), padded(Buffer.from(link + "\0")),
      gnuHeader("short", "2", 0),
      Buffer.alloc(1024),
    ]);
    const got = await readAll(tar, 100);
    assert.equal(got.length, 1);
    assert.equal(got[0]!.e.name, name);
    assert.equal(got[0]!.e.linkname, link);
  });

  it("reads base-256 sizes and skips unread bodies", async () => {
    const h = gnuHeader("big", "0", 0);
    h.fill(0, 124, 136);
    h[124] = 0x80;
    h[135] = 3;
    h.write("        ", 148);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(sum.toString(8).padStart(6, "0") + "\0 ", 148);
    const tar = Buffer.concat([h, padded(Buffer.from("abc")), buildTar([{ name: "next", data: "n" }])]);
    const names: string[] = [];
    for await (const { entry } of readTar([tar])) names.push(`${entry.name}:${entry.size}`);
    assert.deepEqual(names, ["big:3", "next:1"]);
  });

  it("fails on a bad checksum and on truncation", async () => {
    const tar = buildTar([{ name: "f", data: "x".repeat(600) }]);
    const bad = Buffer.from(tar);
    bad[0] = 0x41;
    await assert.rejects(readAll(bad), /checksum/);
    await assert.rejects(readAll(tar.subarray(0, 700)), /unexpected end of archive/);
  });

  it("parses pax records with multi-byte lengths", () => {
    const m = parsePax(Buffer.from("11 path=ab\n14 uid=123456\n"));
    assert.equal(m.get("path")!.toString(), "ab");
    assert.equal(m.get("uid")!.toString(), "123456");
    assert.throws(() => parsePax(Buffer.from("99 path=x\n")), /malformed pax/);
  });

  it("checks xattr names: printable ASCII, a known namespace, bounded name and value", () => {
    for (const ok of ["user.a", "user.lib name", "user.x=y", "security.capability", "security.ima"]) assert.equal(xattrProblem(ok, Buffer.alloc(4)), undefined, ok);
    const cases: [string, RegExp][] = [
      ["", /empty attribute name/],
      ["user.a\n\n# file: /etc/shadow\nuser.b", /not printable ASCII/],
      ["user.a\0b", /not printable ASCII/],
      ["user.\u00e9", /not printable ASCII/],
      ["user.", /namespace/],
      ["trusted.overlay.opaque", /namespace/],
      ["trusted.overlay.redirect", /namespace/],
      ["security.selinux", /namespace/],
      ["system.posix_acl_access", /namespace/],
      ["user." + "x".repeat(251), /longer than 255 bytes/],
    ];
    for (const [name, re] of cases) assert.match(xattrProblem(name, Buffer.alloc(1)) ?? "", re, JSON.stringify(name));
    assert.match(xattrProblem("user.big", Buffer.alloc(65537)) ?? "", /value of 65537 bytes is longer than 65536/);
  });

  it("refuses a bad xattr in either pax spelling, naming the entry and the attribute", async () => {
    const evil = "user.a\n\n# file: /etc/shadow\nsecurity.capability";
    for (const pax of [{ [`SCHILY.xattr.${evil}`]: "1" }, { [`LIBARCHIVE.xattr.${encodeURIComponent(evil)}`]: Buffer.from("1").toString("base64") }]) {
      await assert.rejects(readAll(buildTar([{ name: "etc/f", data: "x", pax }])), (e) => {
        assert.ok(e instanceof TarError);
        assert.ok(e.message.includes('entry "etc/f"') && e.message.includes(JSON.stringify(evil)), e.message);
        return true;
      });
    }
    await assert.rejects(readAll(buildTar([{ name: "f", data: "x", pax: { "LIBARCHIVE.xattr.user.%zz": "MQ==" } }])), /malformed percent-encoding/);
    const [got] = await readAll(buildTar([{ name: "f", data: "x", pax: { "LIBARCHIVE.xattr.user.a%20b": Buffer.from([0, 0xff]).toString("base64") } }]));
    assert.deepEqual(got!.e.xattrs.get("user.a b"), Buffer.from([0, 0xff]), "libarchive names are percent-decoded, values base64-decoded");
  });

  it("bounds extended headers, long names, xattr counts and global pax records", async () => {
    await assert.rejects(readAll(oversizedPax(MAX_EXTENDED_HEADER + 1), 4096), (e) => e instanceof LayerLimitError && /pax extended header of \d+ bytes is larger than the limit of 1048576 bytes/.test(e.message));
    await assert.rejects(readAll(oversizedLongName(5000), 4096), /GNU long name of 5001 bytes is larger than the limit of 4097 bytes/);
    await assert.rejects(readAll(buildTar([{ name: "d/".repeat(2100) + "f", data: "" }]), 4096), /name of 4201 bytes is longer than the limit of 4096 bytes/);
    const many = Object.fromEntries(Array.from({ length: 129 }, (_, i) => [`user.x${i}`, "v"]));
    await assert.rejects(readAll(buildTar([{ name: "f", data: "", xattrs: many }]), 4096), /129 extended attributes, more than the limit of 128/);
    await assert.rejects(readAll(globalPaxFlood(3), 65536), /global pax headers of \d+ bytes are larger than the limit of 1048576 bytes/);
  });

  it("bounds the number of global pax keys, and a layer of many global keys is refused at once", async () => {
    const started = performance.now();
    await assert.rejects(readAll(globalPaxKeyFlood(30_000, 2000), 65536), (e: unknown) => {
      assert.ok(e instanceof LayerLimitError, String(e));
      assert.match(e.message, /global pax headers of 30000 keys are more than the limit of 13\d keys/);
      return true;
    });
    assert.ok(performance.now() - started < 2000, `took ${Math.round(performance.now() - started)} ms`);
    // global keys berth does not read are dropped, not kept: they cost nothing per entry
    const t0 = performance.now();
    const got = await readAll(globalPaxKeyFlood(30_000, 2000, "comment."), 65536);
    assert.equal(got.length, 2000);
    assert.equal(got[0]!.e.xattrs.size, 0);
    assert.ok(performance.now() - t0 < 2000, `took ${Math.round(performance.now() - t0)} ms`);
  });

  it("refuses pax uid, gid and mtime values that are not numbers, naming the entry", async () => {
    await assert.rejects(readAll(buildTar([{ name: "f", data: "", pax: { uid: "x" } }])), /entry "f": invalid uid "x"/);
    await assert.rejects(readAll(buildTar([{ name: "f", data: "", pax: { gid: "-1" } }])), /entry "f": invalid gid "-1"/);
    await assert.rejects(readAll(buildTar([{ name: "f", data: "", pax: { mtime: "soon" } }])), /entry "f": invalid mtime "soon"/);
  });
});

describe("readTar over any chunking", () => {
  const files = [
    { name: "d/", type: "dir" as const },
    ...Array.from({ length: 40 }, (_, i) => ({ name: `d/f${i}`, data: Buffer.alloc(i * 97 + (i % 3) * 512, String.fromCharCode(65 + (i % 26))) })),
    { name: "d/big", data: Buffer.alloc(200_000, "z") },
  ];
  const tar = buildTar(files);
  const want = files.filter((f) => "data" in f).map((f) => `${f.name}:${(f as { data: Buffer }).data.toString()}`);

  for (const chunk of [1, 511, 512, 513, 4096, 65_536, tar.length]) {
    it(`gives the same entries and bytes in chunks of ${chunk}, whole bodies from buffered() only when they are in memory`, async () => {
      const chunks: Buffer[] = [];
      for (let i = 0; i < tar.length; i += chunk) chunks.push(tar.subarray(i, i + chunk));
      const got: string[] = [];
      let whole = 0;
      for await (const { entry, body, buffered } of readTar(chunks)) {
        if (entry.type !== "0") continue;
        const b = buffered();
        let data: Buffer;
        if (b) { whole++; data = b; } else {
          const parts: Buffer[] = [];
          for await (const c of body()) parts.push(c);
          data = Buffer.concat(parts);
        }
        assert.equal(data.length, entry.size, entry.name);
        got.push(`${entry.name}:${data.toString()}`);
      }
      assert.deepEqual(got, want);
      // With one chunk every body is in memory; with 1-byte chunks none (but empty files) is.
      if (chunk === tar.length) assert.equal(whole, want.length);
      if (chunk === 1) assert.equal(whole, 1, "only the empty file d/f0");
    });
  }

  it("a body cut short fails naming the missing bytes, whether streamed or buffered", async () => {
    const cut = tar.subarray(0, 512 * 3 + 100);
    await assert.rejects(async () => {
      for await (const { entry, body, buffered } of readTar([cut])) {
        if (entry.type === "0" && !buffered()) for await (const _ of body()) { /* read */ }
      }
    }, (e: Error) => e instanceof TarError && /unexpected end of archive/.test(e.message));
  });
});
