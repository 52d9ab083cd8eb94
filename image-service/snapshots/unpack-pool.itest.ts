// Layers unpacked in unpack processes: the same files, diff id and input digest as in berthd's
// own thread; the digest check runs before the flush and its refusal is the caller's error;
// hostile layers fail with the same error classes, also when the download fails afterwards; a
// failing download fails the unpack with its own error; no failure returns while a helper still
// runs; the hand-over to a stalled process is bounded; idle processes end; close() stops the
// layers in flight; a process killed mid-layer fails it and leaves no helper; berth-layer dies
// with the thread that started it; a process that cannot load reads nothing.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { execFileSync, spawnSync } from "node:child_process";
import { closeSync, constants, existsSync, openSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { Worker } from "node:worker_threads";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import type { DirectBlob } from "../registry/http.ts";
import path from "node:path";
import { gzipSync, zstdCompressSync } from "node:zlib";
import { buildTar, type TarFixtureEntry } from "../../hack/registry/tar-writer.ts";
import { childProcesses, processState } from "../../conformance/lib/procs.ts";
import { BreakoutError } from "./safe-path.ts";
import { LayerLimitError, TarError } from "./tar-reader.ts";
import { DEFAULT_LAYER_HELPER } from "./layer-helper.ts";
import { MAX_UNACKED, UnpackPool, UnpackWorkersUnavailable } from "./unpack-pool.ts";
import { unpackLayer } from "./unpack.ts";

const sha = (b: Buffer) => "sha256:" + createHash("sha256").update(b).digest("hex");
async function* chunks(b: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let o = 0; o < b.length; o += size) {
    await new Promise((r) => setImmediate(r));
    yield b.subarray(o, o + size);
  }
}
const noSync = { sync: async () => {} };

/** Live (not zombie) processes named `comm` whose parent is one of `parents`. */
const children = (comm: string, parents: number[]) => childProcesses(parents, comm).filter((c) => c.state !== "Z").map((c) => c.pid);
const state = processState;

describe("UnpackPool: layers unpacked in separate processes", () => {
  let dir: string;
  let n = 0;
  const pools: UnpackPool[] = [];
  const pool = (maxWorkers = 2, idleMs?: number) => { const p = new UnpackPool({ maxWorkers, ...(idleMs ? { idleMs } : {}) }); pools.push(p); return p; };
  const out = async () => { const d = path.join(dir, `out-${n++}`); await mkdir(d); return d; };
  let tar: Buffer;
  const entries: TarFixtureEntry[] = [
    { name: "d/", type: "dir", mode: 0o750, mtime: 1_600_000_000 },
    { name: "d/big", data: randomBytes(3 << 20), mode: 0o644, mtime: 1_600_000_001 },
    { name: "d/exe", data: "#!/bin/sh\n", mode: 0o4755, uid: 7, gid: 8, mtime: 1_600_000_002 },
    { name: "d/link", type: "symlink", linkname: "big" },
    { name: "d/fifo", type: "fifo", mode: 0o600 },
    { name: "d/many/", type: "dir", mtime: 1_600_000_003 },
    ...Array.from({ length: 300 }, (_, i): TarFixtureEntry => ({ name: `d/many/f${i}`, data: `file ${i}\n`.repeat(i % 7) })),
  ];

  before(async () => {
    dir = await mkdtemp("/var/tmp/berth-unpack-pool-itest-");
    tar = buildTar(entries);
  });
  after(async () => {
    await Promise.all(pools.map((p) => p.close()));
    await rm(dir, { recursive: true, force: true });
  });

  /** Every file, dir and link of `root` with its type, mode, owner, mtime and content digest. */
  async function listing(root: string): Promise<string[]> {
    const lines: string[] = [];
    const walk = async (rel: string) => {
      for (const name of (await readdir(path.join(root, rel))).sort()) {
        const p = path.join(rel, name);
        const st = await stat(path.join(root, p)).catch(() => undefined);
        const full = path.join(root, p);
        const l = await import("node:fs/promises").then((f) => f.lstat(full));
        lines.push(`${p} ${l.mode.toString(8)} ${l.uid}:${l.gid} ${Math.floor(l.mtimeMs)} ${l.isFile() ? sha(await readFile(full)) : ""}`);
        if (l.isDirectory() && st) await walk(p);
      }
    };
    await walk("");
    return lines;
  }

  for (const compression of ["gzip", "zstd", "none"] as const) {
    it(`${compression}: the same files, diff id and input digest as unpackLayer in this process`, async () => {
      const blob = compression === "gzip" ? gzipSync(tar) : compression === "zstd" ? zstdCompressSync(tar) : tar;
      const [a, b] = [await out(), await out()];
      const checked: unknown[] = [];
      let syncs = 0;
      const res = await pool().unpack(chunks(blob, 64 << 10), compression, a, {
        beforeSync: (diffId, raw) => { checked.push({ diffId, raw }); },
        sync: async () => { syncs++; assert.equal(checked.length, 1, "the digests are checked before the flush"); },
      });
      const inline = await unpackLayer(chunks(blob, 64 << 10), compression, b, noSync);
      assert.equal(res.diffId, sha(tar));
      assert.deepEqual(res.raw, { bytes: blob.length, digest: sha(blob) });
      assert.deepEqual(checked, [{ diffId: res.diffId, raw: res.raw }]);
      assert.equal(syncs, 1);
      assert.deepEqual({ ...res, syncMs: 0 }, { ...inline, syncMs: 0 });
      assert.deepEqual(await listing(a), await listing(b));
      assert.equal(((await stat(path.join(a, "d/exe"))).mode & 0o7777), 0o4755);
    });
  }

  it("onInputEnd runs once, when berthd has handed over the last byte, before the flush", async () => {
    const blob = gzipSync(tar);
    const events: string[] = [];
    const res = await pool(1).unpack(chunks(blob, 64 << 10), "gzip", await out(), {
      onInputEnd: () => { events.push("input end"); },
      sync: async () => { events.push("sync"); },
    });
    assert.equal(res.diffId, sha(tar));
    assert.deepEqual(events, ["input end", "sync"]);
  });

  it("onInputEnd does not run when the input fails", async () => {
    let ended = 0;
    async function* failing(): AsyncGenerator<Buffer> {
      yield* chunks(tar.subarray(0, tar.length >> 1), 256 << 10);
      throw new Error("registry connection reset");
    }
    await assert.rejects(pool(1).unpack(failing(), "none", await out(), { ...noSync, onInputEnd: () => { ended++; } }), /registry connection reset/);
    assert.equal(ended, 0);
  });

  it("input many times the hand-over bound, in odd chunk sizes, comes out byte-exact", async () => {
    const data = randomBytes(5 * MAX_UNACKED + 12345);
    const big = buildTar([{ name: "f", data }]);
    const d = await out();
    const p = pool(1);
    for (const size of [100_003, MAX_UNACKED + 7]) {
      const res = await p.unpack(chunks(big, size), "none", d, noSync);
      assert.deepEqual(res.raw, { bytes: big.length, digest: sha(big) });
      assert.equal(sha(await readFile(path.join(d, "f"))), sha(data));
      await rm(path.join(d, "f"));
    }
  });

  describe("a layer the process downloads itself (DirectDownload)", () => {
    /** A loopback HTTP server answering each request with `answer` (raw socket: any framing); every request's head is kept. */
    async function rawServer(answer: (sock: Socket, path: string) => void) {
      const heads: string[] = [];
      const srv = createServer((sock) => {
        let head = "";
        sock.on("error", () => {});
        sock.on("data", (d) => {
          head += d.toString("latin1");
          if (!head.includes("\r\n\r\n")) return;
          heads.push(head);
          const path = head.split(" ")[1] ?? "";
          head = "";
          answer(sock, path);
        });
      });
      await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
      servers.push(srv);
      return { base: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, heads };
    }
    const servers: Server[] = [];
    after(() => { for (const s of servers) s.close(); });
    const blob = () => gzipSync(tar);
    const ok = (n: number) => `HTTP/1.1 200 OK\r\ncontent-length: ${n}\r\n\r\n`;
    const direct = (url: string, size: number, extra: Partial<DirectBlob> = {}): DirectBlob => ({
      url, size, digest: sha(blob()), headers: { authorization: "Bearer t0ken", "x-mirror": "m", "user-agent": "berth/0.1" },
      hostHeaders: ["x-mirror"], tls: { skipVerify: false, ca: [] }, dialTimeoutMs: 0, stallTimeoutMs: 10_000, ...extra,
    });
    /** The rest of `b` from an offset, recording each call. */
    const resting = (b: Buffer) => {
      const calls: { offset: number; why: string }[] = [];
      return { calls, rest: (offset: number, why: string) => { calls.push({ offset, why }); return chunks(b.subarray(offset), 64 << 10); } };
    };

    it("downloads it with the headers given, and berthd sends none of its bytes", async () => {
      const b = blob();
      const srv = await rawServer((sock) => { sock.write(ok(b.length)); sock.write(b); });
      const r = resting(b);
      const res = await pool().unpack({ blob: direct(`${srv.base}/v2/x/blobs/1`, b.length), rest: r.rest }, "gzip", await out(), noSync);
      assert.deepEqual(res.raw, { bytes: b.length, digest: sha(b) });
      assert.equal(res.diffId, sha(tar));
      assert.deepEqual(r.calls, []);
      assert.equal(srv.heads.length, 1);
      assert.match(srv.heads[0]!, /^GET \/v2\/x\/blobs\/1 HTTP\/1.1\r\n/);
      assert.match(srv.heads[0]!, /\r\nauthorization: Bearer t0ken\r\n/i);
      assert.match(srv.heads[0]!, /\r\nx-mirror: m\r\n/i);
    });

    it("onInputEnd runs once its own download has the last byte, before the flush", async () => {
      const b = blob();
      const srv = await rawServer((sock) => { sock.write(ok(b.length)); sock.write(b); });
      const events: string[] = [];
      const res = await pool().unpack({ blob: direct(`${srv.base}/b`, b.length), rest: resting(b).rest }, "gzip", await out(), {
        onInputEnd: () => { events.push("input end"); },
        sync: async () => { events.push("sync"); },
      });
      assert.equal(res.diffId, sha(tar));
      assert.deepEqual(events, ["input end", "sync"]);
    });

    it("a download cut short goes on through berthd from the byte it stopped at", async () => {
      const b = blob();
      const cut = 100_003;
      const srv = await rawServer((sock) => { sock.write(ok(b.length)); sock.end(b.subarray(0, cut)); });
      const r = resting(b);
      let ended = 0;
      const res = await pool().unpack({ blob: direct(`${srv.base}/b`, b.length), rest: r.rest }, "gzip", await out(), {
        sync: async () => { assert.equal(ended, 1, "the input ended (berthd sent the rest) before the flush"); },
        onInputEnd: () => { ended++; },
      });
      assert.equal(ended, 1);
      assert.deepEqual(res.raw, { bytes: b.length, digest: sha(b) });
      assert.equal(r.calls.length, 1);
      assert.equal(r.calls[0]!.offset, cut);
      assert.match(r.calls[0]!.why, /closed|aborted/);
    });

    it("a 401 (or any answer but 200) hands the whole download to berthd", async () => {
      const b = blob();
      const srv = await rawServer((sock) => { sock.end("HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\nwww-authenticate: Bearer realm=\"x\"\r\n\r\n"); });
      const r = resting(b);
      const res = await pool().unpack({ blob: direct(`${srv.base}/b`, b.length), rest: r.rest }, "gzip", await out(), noSync);
      assert.equal(res.diffId, sha(tar));
      assert.deepEqual(r.calls.map((c) => c.offset), [0]);
      assert.match(r.calls[0]!.why, /http 401/);
    });

    it("a redirect to another origin carries neither the credentials nor the host's headers", async () => {
      const b = blob();
      const there = await rawServer((sock) => { sock.write(ok(b.length)); sock.write(b); });
      const here = await rawServer((sock) => { sock.write(`HTTP/1.1 307 Temporary Redirect\r\nlocation: ${there.base}/storage/x\r\ncontent-length: 0\r\n\r\n`); });
      const r = resting(b);
      const res = await pool().unpack({ blob: direct(`${here.base}/b`, b.length), rest: r.rest }, "gzip", await out(), noSync);
      assert.equal(res.diffId, sha(tar));
      assert.deepEqual(r.calls, []);
      assert.match(there.heads[0]!, /^GET \/storage\/x /);
      assert.doesNotMatch(there.heads[0]!, /authorization|x-mirror/i);
      assert.match(there.heads[0]!, /\r\nuser-agent: berth\/0.1\r\n/i);
    });

    it("more bytes than the blob's size are never taken: berthd goes on from the last byte within it", async () => {
      const b = blob();
      const srv = await rawServer((sock) => { sock.write(ok(b.length + 5000)); sock.write(b); sock.write(Buffer.alloc(5000, 0x41)); });
      const r = resting(b);
      const res = await pool().unpack({ blob: direct(`${srv.base}/b`, b.length), rest: r.rest }, "gzip", await out(), noSync);
      assert.deepEqual(res.raw, { bytes: b.length, digest: sha(b) });
      assert.equal(r.calls.length, 1);
      assert.ok(r.calls[0]!.offset <= b.length);
      assert.match(r.calls[0]!.why, /more than the \d+ bytes/);
    });

    it("a registry that stops sending is given up after the stall timeout, and berthd goes on", async () => {
      const b = blob();
      const srv = await rawServer((sock) => { sock.write(ok(b.length)); sock.write(b.subarray(0, 4096)); /* then nothing */ });
      const r = resting(b);
      const t = Date.now();
      const res = await pool().unpack({ blob: direct(`${srv.base}/b`, b.length, { stallTimeoutMs: 400 }), rest: r.rest }, "gzip", await out(), noSync);
      assert.equal(res.diffId, sha(tar));
      assert.ok(Date.now() - t < 5000);
      assert.deepEqual(r.calls.map((c) => c.offset), [4096]);
      assert.match(r.calls[0]!.why, /stalled for 400 ms/);
    });

    it("a download whose description is over a start frame's bound is berthd's from the first byte", async () => {
      const b = blob();
      const srv = await rawServer((sock) => { sock.write(ok(b.length)); sock.write(b); });
      const r = resting(b);
      const huge = direct(`${srv.base}/b`, b.length);
      huge.headers["x-big"] = "v".repeat(70 << 10);
      const res = await pool().unpack({ blob: huge, rest: r.rest }, "gzip", await out(), noSync);
      assert.equal(res.diffId, sha(tar));
      assert.deepEqual(r.calls, [{ offset: 0, why: "its description is over 65536 bytes" }]);
      assert.deepEqual(srv.heads, [], "the process sent no request");
    });

    it("a layer that fails ends the process's download at once, not at the stall timeout", async () => {
      const evil = buildTar([{ name: "../escape", data: "x" }]);
      let closed = 0;
      const srv = await rawServer((sock) => {
        sock.on("close", () => { closed = Date.now(); });
        sock.write(ok(evil.length + (8 << 20)));
        sock.write(evil); // then nothing: the rest never comes
      });
      const r = resting(evil);
      const t = Date.now();
      // The process stays (idle for 10 s), so only the end of its download can close the socket.
      await assert.rejects(pool(1, 10_000).unpack({ blob: direct(`${srv.base}/b`, evil.length + (8 << 20), { stallTimeoutMs: 30_000 }), rest: r.rest }, "none", await out(), noSync),
        (e: Error) => e instanceof BreakoutError);
      const failed = Date.now();
      while (!closed && Date.now() - failed < 5_000) await new Promise((res) => setTimeout(res, 20));
      assert.ok(closed > 0 && closed - failed < 500, `the registry's socket closed ${closed ? closed - failed : "never"} ms after the layer failed (${failed - t} ms in)`);
      assert.deepEqual(r.calls, []);
    });

    it("close() stops a download in flight, and berthd does not take it up", async () => {
      const b = blob();
      const srv = await rawServer((sock) => { sock.write(ok(b.length)); sock.write(b.subarray(0, 64 << 10)); /* then nothing */ });
      const r = resting(b);
      const p = new UnpackPool({ maxWorkers: 1 });
      const running = p.unpack({ blob: direct(`${srv.base}/b`, b.length), rest: r.rest }, "gzip", await out(), noSync);
      running.catch(() => {});
      while (srv.heads.length === 0) await new Promise((res) => setTimeout(res, 10));
      await new Promise((res) => setTimeout(res, 200)); // the first 64 KiB are in the process
      await p.close();
      await assert.rejects(running);
      await new Promise((res) => setTimeout(res, 300));
      assert.deepEqual(r.calls, [], "no rest was asked of berthd's client");
    });

    it("a hostile layer fails with its own error while the process downloads it", async () => {
      const evil = buildTar([{ name: "../escape", data: "x" }, { name: "pad", data: Buffer.alloc(1 << 20) }]);
      const srv = await rawServer((sock) => { sock.write(ok(evil.length)); sock.write(evil); });
      const r = resting(evil);
      await assert.rejects(pool().unpack({ blob: direct(`${srv.base}/b`, evil.length), rest: r.rest }, "none", await out(), noSync), (e: Error) => e instanceof BreakoutError);
      assert.deepEqual(r.calls, []);
    });
  });

  it("a refusal by the digest check is the caller's own error, and the layer is never flushed", async () => {
    class Refused extends Error {}
    let synced = false;
    await assert.rejects(pool().unpack(chunks(gzipSync(tar), 1 << 20), "gzip", await out(), {
      beforeSync: () => { throw new Refused("digest mismatch"); },
      sync: async () => { synced = true; },
    }), Refused);
    assert.equal(synced, false);
  });

  it("a failed flush fails the unpack with the flush's message", async () => {
    await assert.rejects(pool().unpack(chunks(tar, 1 << 20), "none", await out(), { sync: async () => { throw new Error("syncfs: EIO"); } }), /syncfs: EIO/);
  });

  it("hostile layers fail with unpackLayer's own error classes and fields", async () => {
    const p = pool();
    await assert.rejects(p.unpack(chunks(buildTar([{ name: "../escape", data: "x" }]), 512), "none", await out(), noSync),
      (e: Error) => e instanceof BreakoutError && e.entry === "../escape" && /entry "\.\.\/escape"/.test(e.message));
    await assert.rejects(p.unpack(chunks(tar, 1 << 20), "none", await out(), { ...noSync, limits: { maxLayerEntries: 10 } }),
      (e: Error) => e instanceof LayerLimitError && e.limit === "image.max_layer_entries");
    await assert.rejects(p.unpack(chunks(gzipSync(Buffer.alloc(64 << 20)), 1 << 20), "gzip", await out(), { ...noSync, limits: { maxLayerBytes: 1 << 20 } }),
      (e: Error) => e instanceof LayerLimitError && e.limit === "image.max_layer_bytes");
    await assert.rejects(p.unpack(chunks(Buffer.alloc(4096, "x"), 512), "none", await out(), noSync), (e: Error) => e instanceof TarError);
    await assert.rejects(p.unpack(chunks(randomBytes(4096), 512), "gzip", await out(), noSync), /header|gzip|incorrect/i);
  });

  it("a download that fails midway fails the unpack with its own error; the worker takes the next layer", async () => {
    const p = pool(1);
    async function* failing(): AsyncGenerator<Buffer> {
      yield* chunks(tar.subarray(0, tar.length >> 1), 256 << 10);
      throw new Error("registry connection reset");
    }
    const d = await out();
    const running = p.unpack(failing(), "none", d, noSync);
    const parents = [process.pid];
    while (parents.length === 1) { parents.push(...p.pids); await new Promise((r) => setTimeout(r, 5)); }
    await assert.rejects(running, /registry connection reset/);
    assert.equal(p.workers, 1, "the process is still there (idle)");
    assert.deepEqual(children("berth-layer", parents), [], "the layer's helper (the fifo) was stopped before the failure returned");
    const listed = await readdir(d, { recursive: true });
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(await readdir(d, { recursive: true }), listed, "nothing writes into the layer afterwards");
    const res = await p.unpack(chunks(tar, 1 << 20), "none", await out(), noSync);
    assert.equal(res.diffId, sha(tar));
    assert.equal(p.workers, 1);
  });

  it("a hostile layer's error stands when the download fails afterwards", async () => {
    // The download fails only once the unpack has answered (or after 5 s): the worker's refusal
    // must be what the caller sees, without waiting for the download to end.
    let answered = false;
    async function* breakoutThenReset(): AsyncGenerator<Buffer> {
      yield buildTar([{ name: "../escape", data: "x" }, { name: "pad", data: Buffer.alloc(1 << 20) }]);
      const deadline = Date.now() + 5000;
      while (!answered && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      throw new Error("stall: registry stopped sending");
    }
    const unpacking = pool().unpack(breakoutThenReset(), "none", await out(), noSync);
    unpacking.finally(() => { answered = true; }).catch(() => {});
    await assert.rejects(unpacking, (e: Error) => e instanceof BreakoutError);
  });

  it("a layer whose download fails before its process has read the start still fails at once", async () => {
    const p = pool(1);
    // Layer A keeps the process; it is stopped while layer B starts and fails at once, so B's
    // start and its abort wait in the pipe together.
    let releaseA!: () => void;
    const holdA = new Promise<void>((r) => { releaseA = r; setTimeout(r, 10_000); });
    async function* slowA(): AsyncGenerator<Buffer> { yield tar.subarray(0, 4096); await holdA; yield tar.subarray(4096); }
    const a = p.unpack(slowA(), "none", await out(), noSync);
    while (!p.pids.length) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 300)); // A has started in the process
    const pid = p.pids[0]!;
    process.kill(pid, "SIGSTOP");
    try {
      // eslint-disable-next-line require-yield
      async function* failing(): AsyncGenerator<Buffer> { throw new Error("registry answered 401"); }
      const b = p.unpack(failing(), "none", await out(), noSync);
      await new Promise((r) => setTimeout(r, 100));
      process.kill(pid, "SIGCONT");
      const t = Date.now();
      await assert.rejects(b, /registry answered 401/);
      assert.ok(Date.now() - t < 3000, `B failed after ${Date.now() - t} ms`);
    } finally {
      process.kill(pid, "SIGCONT");
      releaseA();
    }
    assert.equal((await a).diffId, sha(tar));
  });

  it("hands a stalled worker at most a bounded number of bytes", async () => {
    // The layer's first node (a fifo) goes to a helper that never answers and exits after 1.5 s.
    const helper = path.join(dir, "stalled-helper");
    await writeFile(helper, "#!/bin/sh\nsleep 1.5\nexit 3\n");
    await chmod(helper, 0o755);
    const big = buildTar([{ name: "fifo", type: "fifo" }, { name: "data", data: Buffer.alloc(64 << 20) }]);
    let given = 0;
    let givenAtOneSecond = -1;
    const timer = setTimeout(() => { givenAtOneSecond = given; }, 1000);
    async function* counted(): AsyncGenerator<Buffer> { for await (const c of chunks(big, 256 << 10)) { given += c.length; yield c; } }
    await assert.rejects(pool().unpack(counted(), "none", await out(), { ...noSync, helper }), /exited|without answering/);
    clearTimeout(timer);
    assert.ok(givenAtOneSecond >= 0, "the stall lasted a second");
    // What the process has not taken (MAX_UNACKED, 4 MiB), the chunk being written, and what
    // the stalled unpackLayer had taken in (its tar reader and writer hold a few chunks).
    // Without the bound, all 64 MiB went over.
    const bound = MAX_UNACKED + (256 << 10) + (2 << 20);
    assert.ok(bound <= 7 << 20);
    assert.ok(givenAtOneSecond <= bound, `${givenAtOneSecond} bytes handed over, bound ${bound}`);
  });

  it("runs several layers at once on at most maxWorkers workers", async () => {
    const p = pool(2);
    let most = 0;
    const watch = setInterval(() => { most = Math.max(most, p.workers); }, 5);
    const results = await Promise.all(Array.from({ length: 5 }, async () => p.unpack(chunks(gzipSync(tar), 128 << 10), "gzip", await out(), noSync)));
    clearInterval(watch);
    for (const r of results) assert.equal(r.diffId, sha(tar));
    assert.equal(most, 2);
  });

  it("an idle worker ends after idleMs; the next layer starts a new one", async () => {
    const p = pool(2, 200);
    await p.unpack(chunks(tar, 1 << 20), "none", await out(), noSync);
    assert.equal(p.workers, 1);
    const [pid] = p.pids;
    const deadline = Date.now() + 5000;
    while (state(pid!) !== "gone" && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(state(pid!), "gone", "the idle process exited and was reaped");
    assert.equal(p.workers, 0);
    assert.equal((await p.unpack(chunks(tar, 1 << 20), "none", await out(), noSync)).diffId, sha(tar));
  });

  it("close() also waits for a process the idle timer let go, and kills one that does not leave", async () => {
    const p = pool(2, 100);
    await p.unpack(chunks(tar, 1 << 20), "none", await out(), noSync);
    const [pid] = p.pids;
    process.kill(pid!, "SIGSTOP"); // it cannot see the end of its stdin, so it will not exit by itself
    try {
      const deadline = Date.now() + 5000;
      while (p.workers > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal(p.workers, 0, "the idle timer let it go");
      assert.equal(state(pid!), "T", "stopped, not gone");
      const t = Date.now();
      await p.close();
      assert.ok(Date.now() - t >= 4000, "close() waited its grace for the process");
      assert.equal(state(pid!), "gone", "close() returned only once the process was killed and reaped");
    } finally {
      if (state(pid!) !== "gone") process.kill(pid!, "SIGKILL");
    }
  });

  it("close() stops the layers in flight, their helpers first, and refuses new ones", async () => {
    const helper = path.join(dir, "slow-helper");
    const pidFile = path.join(dir, "slow-helper.pid");
    await writeFile(helper, `#!/bin/sh\necho $$ > ${pidFile}\nexec sleep 30\n`);
    await chmod(helper, 0o755);
    const p = pool(1);
    const running = p.unpack(chunks(buildTar([{ name: "fifo", type: "fifo" }]), 512), "none", await out(), { ...noSync, helper });
    const refused = assert.rejects(running, /layer unpacking has stopped/);
    const deadline = Date.now() + 5000;
    while (!existsSync(pidFile) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const pid = Number(await readFile(pidFile, "utf8"));
    assert.ok(pid > 0);
    const t = Date.now();
    await p.close();
    await refused;
    assert.equal(state(pid), "gone", "the stalled helper was killed and reaped before close() returned");
    assert.ok(Date.now() - t < 3000, "close() did not wait for the helper's own timeout");
    assert.equal(p.workers, 0);
    await assert.rejects(p.unpack(chunks(tar, 1 << 20), "none", await out(), noSync), /layer unpacking has stopped/);
  });

  it("an unpack process killed in the middle of a layer fails it, and its helper does not outlive it", async () => {
    const p = pool(1);
    // The layer's fifo starts berth-layer; the download then waits (up to 10 s) while the process is killed.
    let release!: () => void;
    const hold = new Promise<void>((r) => { release = r; setTimeout(r, 10_000); });
    async function* stalled(): AsyncGenerator<Buffer> {
      yield buildTar([{ name: "fifo", type: "fifo" }, { name: "pad", data: Buffer.alloc(1 << 20) }]).subarray(0, 4096);
      await hold;
    }
    const running = p.unpack(stalled(), "none", await out(), noSync);
    const failed = assert.rejects(running, /layer unpack process \d+: exited \(SIGKILL\)/);
    let helpers: number[] = [];
    const deadline = Date.now() + 5000;
    while (!helpers.length && Date.now() < deadline) { helpers = children("berth-layer", p.pids); await new Promise((r) => setTimeout(r, 20)); }
    assert.equal(helpers.length, 1, "the layer's helper runs");
    process.kill(p.pids[0]!, "SIGKILL");
    await failed;
    release();
    const until = Date.now() + 2000;
    while (!["Z", "gone"].includes(state(helpers[0]!)) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    assert.ok(["Z", "gone"].includes(state(helpers[0]!)), `helper state ${state(helpers[0]!)} after its process was killed`);
    assert.equal(p.workers, 0);
    assert.equal((await p.unpack(chunks(tar, 1 << 20), "none", await out(), noSync)).diffId, sha(tar), "the next layer gets a new process");
  });

  it("berth-layer dies with the thread that started it (PR_SET_PDEATHSIG)", async () => {
    // Its stdin is a FIFO this thread also holds open for writing: no EOF ends it, only its
    // parent thread's end (PR_SET_PDEATHSIG).
    const d = await out();
    const fifo = path.join(dir, `stdin-${n++}`);
    execFileSync("mkfifo", [fifo]);
    const held = openSync(fifo, constants.O_RDWR);
    try {
      const w = new Worker(`
        const { spawn } = require("node:child_process");
        const { openSync, constants } = require("node:fs");
        const { parentPort, workerData } = require("node:worker_threads");
        const stdin = openSync(workerData.fifo, constants.O_RDWR);
        const c = spawn(workerData.helper, [workerData.dir], { stdio: [stdin, "pipe", "inherit"] });
        parentPort.postMessage(c.pid);
      `, { eval: true, workerData: { helper: DEFAULT_LAYER_HELPER, dir: d, fifo } });
      const pid = await new Promise<number>((resolve) => w.once("message", resolve));
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(state(pid), "S", "the helper waits for records");
      await w.terminate();
      const deadline = Date.now() + 2000;
      while (!["Z", "gone"].includes(state(pid)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.ok(["Z", "gone"].includes(state(pid)), `helper state ${state(pid)} after its thread ended`);
    } finally {
      closeSync(held);
    }
  });

  it("berth-layer whose parent died before it asked to die with it exits at once", async () => {
    const d = await out();
    // BERTH_LAYER_PARENT names the parent that spawned it; another pid means that one is gone.
    const r = spawnSync(DEFAULT_LAYER_HELPER, [d], { input: "", env: { ...process.env, BERTH_LAYER_PARENT: "999999999" }, timeout: 5000 });
    assert.equal(r.status, 1);
    const ok = spawnSync(DEFAULT_LAYER_HELPER, [d], { input: "", env: { ...process.env, BERTH_LAYER_PARENT: String(process.pid) }, timeout: 5000 });
    assert.equal(ok.status, 0, ok.stderr?.toString());
  });

  it("a process that is ready but whose event loop is stuck is killed after its silence, and its layer fails", async () => {
    const stuck = path.join(dir, "stuck-worker.mjs");
    // ready, then never turns its event loop again once a layer arrives
    await writeFile(stuck, "process.send({ t: 'ready', id: 0 });\nprocess.stdin.on('data', () => { for (;;) {} });\n");
    const p = new UnpackPool({ maxWorkers: 1, module: new URL(`file://${stuck}`), silenceMs: 1 });
    pools.push(p);
    const t = Date.now();
    const pending = p.unpack(chunks(tar, 1 << 20), "none", await out(), noSync);
    const deadline = Date.now() + 5000;
    while (!p.pids.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const [pid] = p.pids;
    // silenceMs is raised to two heartbeats (4 s)
    await assert.rejects(pending, /sent nothing for 4 s with layers in flight \(its event loop is stuck\); killed/);
    const took = Date.now() - t;
    assert.ok(took >= 3900 && took < 15_000, `failed after ${took} ms`);
    assert.equal(state(pid!), "gone", "killed and reaped");
  });

  it("a real process keeps its layers through a silence bound shorter than the layer (its heartbeat)", async () => {
    // berth-layer answers slowly here: a helper that sleeps before exec'ing the real one
    const slow = path.join(dir, "slow-layer-helper");
    await writeFile(slow, `#!/bin/sh\nsleep 6\nexec ${DEFAULT_LAYER_HELPER} "$@"\n`);
    await chmod(slow, 0o755);
    const p = new UnpackPool({ maxWorkers: 1, silenceMs: 4000 });
    pools.push(p);
    const res = await p.unpack(chunks(tar, 1 << 20), "none", await out(), { ...noSync, helper: slow });
    assert.equal(res.diffId, sha(tar));
  });

  it("a worker that cannot load makes unpack fail as unavailable, having read nothing", async () => {
    const broken = path.join(dir, "broken-worker.mjs");
    await writeFile(broken, "throw new Error('cannot load');\n");
    const p = new UnpackPool({ maxWorkers: 1, module: new URL(`file://${broken}`) });
    pools.push(p);
    let read = false;
    async function* src(): AsyncGenerator<Buffer> { read = true; yield tar; }
    await assert.rejects(p.unpack(src(), "none", await out(), noSync), (e: Error) => e instanceof UnpackWorkersUnavailable && /cannot load/.test(e.message));
    await assert.rejects(p.unpack(src(), "none", await out(), noSync), UnpackWorkersUnavailable);
    assert.equal(read, false);
  });

  it("a process that never becomes ready is killed after the ready timeout; three in a row make the pool give up", async () => {
    const hung = path.join(dir, "hung-worker.mjs");
    await writeFile(hung, "setInterval(() => {}, 1000);\n");
    const p = new UnpackPool({ maxWorkers: 1, module: new URL(`file://${hung}`), readyTimeoutMs: 300 });
    pools.push(p);
    let read = false;
    async function* src(): AsyncGenerator<Buffer> { read = true; yield tar; }
    for (const permanent of [false, false, true]) {
      const t = Date.now();
      await assert.rejects(p.unpack(src(), "none", await out(), noSync),
        (e: Error) => e instanceof UnpackWorkersUnavailable && e.permanent === permanent && /not ready within 300 ms/.test(e.message));
      assert.ok(Date.now() - t < 5000);
    }
    assert.equal(read, false);
    assert.equal(p.workers, 0, "the hung processes were killed");
  });
});
