// The unpack pipeline on a real filesystem: compressed bytes in batches (reused buffers) through
// gzip/zstd, large files written through the thread pool, small ones synchronously. Whatever the
// chunking of the input, every file comes out byte-exact with its mode and mtime, and the diff id
// is the tar's sha256. A stream cut off inside a large file fails and leaves nothing writing.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, readdir, rm, stat } from "node:fs/promises";
import path from "node:path";
import { gzipSync, zstdCompressSync } from "node:zlib";
import { buildTar, type TarFixtureEntry } from "../../hack/registry/tar-writer.ts";
import { ASYNC_WRITE_MIN } from "./layer-writer.ts";
import { FEED_BATCH, unpackLayer } from "./unpack.ts";

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

function* chunks(b: Buffer, size: number): Generator<Buffer> {
  for (let o = 0; o < b.length; o += size) yield b.subarray(o, o + size);
}
/** An async source that yields to the event loop between chunks, like a socket. */
async function* slowly(it: Iterable<Buffer>): AsyncGenerator<Buffer> {
  for (const c of it) {
    await new Promise((r) => setImmediate(r));
    yield c;
  }
}

describe("unpackLayer on a real filesystem", () => {
  let dir: string;
  const files = new Map<string, { data: Buffer; mode: number; mtime: number }>();
  let tar: Buffer;

  before(async () => {
    dir = await mkdtemp("/var/tmp/berth-unpack-itest-");
    const entries: TarFixtureEntry[] = [{ name: "big/", type: "dir" }, { name: "small/", type: "dir" }];
    const add = (name: string, data: Buffer, mode: number, mtime: number) => {
      files.set(name, { data, mode, mtime });
      entries.push({ name, data, mode, mtime });
    };
    // Incompressible large files (several batches and output chunks each), one exactly at the
    // thread-pool threshold and one just below it, then many small compressible ones.
    add("big/a", randomBytes(5 * FEED_BATCH + 12345), 0o755, 1_600_000_001);
    add("big/edge", randomBytes(ASYNC_WRITE_MIN), 0o600, 1_600_000_002);
    add("big/below", randomBytes(ASYNC_WRITE_MIN - 1), 0o640, 1_600_000_003);
    for (let i = 0; i < 300; i++) add(`small/f${i}`, Buffer.from(`file ${i} `.repeat(1 + (i % 97))), 0o644, 1_600_000_100 + i);
    add("big/z", Buffer.alloc(3 * ASYNC_WRITE_MIN + 7, 0x5a), 0o644, 1_600_000_004);
    tar = buildTar(entries);
  });
  after(async () => { await rm(dir, { recursive: true, force: true }); });

  const check = async (out: string) => {
    for (const [name, f] of files) {
      const p = path.join(out, name);
      const got = await readFile(p);
      assert.equal(got.length, f.data.length, `${name}: size`);
      assert.equal(sha(got), sha(f.data), `${name}: content`);
      const st = await stat(p);
      assert.equal(st.mode & 0o7777, f.mode, `${name}: mode`);
      assert.equal(Math.floor(st.mtimeMs / 1000), f.mtime, `${name}: mtime`);
    }
  };

  const cases: [string, "gzip" | "zstd", number][] = [
    ["gzip, 1000-byte chunks", "gzip", 1000],
    ["gzip, 64 KiB chunks", "gzip", 64 << 10],
    ["gzip, 3 MiB chunks", "gzip", 3 << 20],
    ["zstd, 64 KiB chunks", "zstd", 64 << 10],
    ["zstd, the whole blob at once", "zstd", 1 << 30],
  ];
  for (const [what, compression, size] of cases) {
    it(`${what}: every file byte-exact with mode and mtime, diff id is the tar's sha256`, async () => {
      const blob = compression === "gzip" ? gzipSync(tar) : zstdCompressSync(tar);
      const out = path.join(dir, what.replace(/[^a-z0-9]+/gi, "-"));
      await mkdir(out);
      const res = await unpackLayer(slowly(chunks(blob, size)), compression, out, { sync: async () => {} });
      assert.equal(res.diffId, `sha256:${sha(tar)}`);
      assert.equal(res.bytes, tar.length);
      assert.deepEqual(res.raw, { bytes: blob.length, digest: `sha256:${sha(blob)}` }, "the input's size and digest, for the caller's check");
      await check(out);
    });
  }

  it("onInputEnd runs once, after the input's last chunk was taken and before the flush; not when the input fails", async () => {
    const blob = gzipSync(tar);
    const events: string[] = [];
    let given = 0;
    async function* counted(): AsyncGenerator<Buffer> {
      for (const c of chunks(blob, 64 << 10)) { given += c.length; yield c; }
      events.push("source done");
    }
    const out = path.join(dir, "input-end");
    await mkdir(out);
    await unpackLayer(counted(), "gzip", out, {
      onInputEnd: () => { events.push(`input end after ${given} bytes`); },
      sync: async () => { events.push("sync"); },
    });
    assert.deepEqual(events, ["source done", `input end after ${blob.length} bytes`, "sync"]);
    let ended = 0;
    async function* cut(): AsyncGenerator<Buffer> { yield blob.subarray(0, blob.length >> 1); throw new Error("connection reset"); }
    const out2 = path.join(dir, "input-cut");
    await mkdir(out2);
    await assert.rejects(unpackLayer(cut(), "gzip", out2, { onInputEnd: () => { ended++; }, sync: async () => {} }), /connection reset/);
    assert.equal(ended, 0);
  });

  for (const size of [512, 1 << 20]) it(`entries that replace earlier ones keep tar order (${size}-byte chunks)`, async () => {
    const entries: TarFixtureEntry[] = [
      { name: "a/", type: "dir", mtime: 1_500_000_000 },
      { name: "a/f", data: "one" },
      { name: "a/f", data: "two" },
      { name: "a/l", type: "symlink", linkname: "f" },
      { name: "a/l", data: "file now" },
      { name: "a/x", data: "x" },
      { name: "a/x/", type: "dir" },
      { name: "a/x/y", data: "y" },
      { name: "a/d/", type: "dir" },
      { name: "a/d/inner", data: "inner" },
      { name: "a/d", data: "was a dir" },
      { name: "a/h", type: "hardlink", linkname: "a/f" },
      { name: "a/f", data: "three", mode: 0o600 },
    ];
    const out = path.join(dir, `order-${size}`);
    await mkdir(out);
    await unpackLayer(slowly(chunks(buildTar(entries), size)), "none", out, { sync: async () => {} });
    const read = (p: string) => readFile(path.join(out, p), "utf8");
    assert.equal(await read("a/f"), "three");
    assert.equal((await stat(path.join(out, "a/f"))).mode & 0o777, 0o600);
    assert.equal(await read("a/h"), "two", "the hard link keeps the file it was made to");
    assert.equal(await read("a/l"), "file now");
    assert.ok((await stat(path.join(out, "a/x"))).isDirectory());
    assert.equal(await read("a/x/y"), "y");
    assert.equal(await read("a/d"), "was a dir");
    assert.deepEqual((await readdir(path.join(out, "a"))).sort(), ["d", "f", "h", "l", "x"]);
    assert.equal(Math.floor((await stat(path.join(out, "a"))).mtimeMs / 1000), 1_500_000_000, "directory times are set after every file in it exists");
  });

  it("a gzip stream cut off inside a large file is refused, and the layer directory can be removed at once", async () => {
    const blob = gzipSync(tar);
    const out = path.join(dir, "cut");
    await mkdir(out);
    await assert.rejects(unpackLayer(slowly(chunks(blob.subarray(0, Math.floor(blob.length / 3)), 64 << 10)), "gzip", out, { sync: async () => {} }),
      (e: Error) => /unexpected end|end of file/i.test(e.message));
    const partial = await stat(path.join(out, "big/a"));
    assert.ok(partial.size < files.get("big/a")!.data.length, "the large file is incomplete");
    await rm(out, { recursive: true });
    assert.ok(!(await readdir(dir)).includes("cut"));
  });
});
