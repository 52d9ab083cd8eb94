// The limits of a SPDY session against a hostile peer: a raw TCP client writes
// hand-made frames at a server-side SpdyConnection.
import assert from "node:assert/strict";
import { once } from "node:events";
import net from "node:net";
import { test } from "node:test";
import zlib from "node:zlib";
import { SpdyConnection, SpdyLimitError, type SpdyLimits, type SpdyStream } from "./connection.ts";
import { SPDY3_DICTIONARY } from "./dictionary.ts";
import { FrameType, GoawayStatus, RstStatus, dataFrame, encodeHeaderBlock, parseControl, pingFrame, splitFrame, synStreamFrame } from "./frames.ts";
import { HeaderCompressor } from "./header-zlib.ts";

interface Pair { server: SpdyConnection; client: net.Socket; errors: Error[]; limits: Error[]; close(): Promise<void> }

async function pair(limits: Partial<SpdyLimits> = {}): Promise<Pair> {
  const srv = net.createServer();
  srv.listen(0, "127.0.0.1");
  await once(srv, "listening");
  const { port } = srv.address() as net.AddressInfo;
  const client = net.connect(port, "127.0.0.1");
  const [sock] = (await once(srv, "connection")) as [net.Socket];
  const server = new SpdyConnection(sock, { isServer: true, limits });
  const errors: Error[] = [];
  const lim: Error[] = [];
  server.on("protocolError", (e: Error) => errors.push(e));
  server.on("limit", (e: Error) => lim.push(e));
  client.on("error", () => undefined);
  return {
    server, client, errors, limits: lim,
    async close() { client.destroy(); server.destroy(); srv.close(); },
  };
}

/** Control frames the client received until the socket closed or `ms` passed. */
function collect(sock: net.Socket): { frames: () => { type: number | "data"; payload: Buffer; streamId?: number }[]; closed: Promise<void> } {
  let buf = Buffer.alloc(0);
  const out: { type: number | "data"; payload: Buffer; streamId?: number }[] = [];
  sock.on("data", (c: Buffer) => {
    buf = Buffer.concat([buf, c]);
    for (let s = splitFrame(buf); s; s = splitFrame(buf)) {
      buf = buf.subarray(s.size);
      out.push(s.frame.control ? { type: s.frame.type, payload: s.frame.payload } : { type: "data", payload: s.frame.payload, streamId: s.frame.streamId });
    }
  });
  const closed = new Promise<void>((r) => sock.once("close", () => r()));
  return { frames: () => out, closed };
}

const withTimeout = <T>(p: Promise<T>, ms: number, what: string) => Promise.race([p, new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`${what}: not within ${ms} ms`)), ms).unref())]);

test("a header bomb (a small block inflating to 256 MiB) ends the session with GOAWAY naming the limit, without inflating it", async () => {
  const p = await pair();
  const seen = collect(p.client);
  try {
    const bomb = zlib.deflateSync(Buffer.alloc(256 * 1024 * 1024), { dictionary: SPDY3_DICTIONARY, level: 9 });
    assert.ok(bomb.length < 300_000, `bomb is ${bomb.length} bytes`);
    const rss0 = process.memoryUsage().rss;
    // The bomb goes in two frames' worth: the first frame alone already inflates past the limit.
    p.client.write(synStreamFrame(1, 0, bomb.subarray(0, 60_000)));
    await withTimeout(seen.closed, 5000, "session close");
    assert.ok(p.server.destroyed);
    assert.ok(p.server.closeError instanceof SpdyLimitError, String(p.server.closeError));
    assert.match(p.server.closeError!.message, /header block inflates to more than 65536 bytes/);
    const goaway = seen.frames().find((f) => f.type === FrameType.GOAWAY);
    assert.ok(goaway, "no GOAWAY");
    assert.equal((parseControl(FrameType.GOAWAY, 0, goaway.payload) as { status: number }).status, GoawayStatus.PROTOCOL_ERROR);
    assert.ok(process.memoryUsage().rss - rss0 < 64 * 1024 * 1024, "memory grew by more than 64 MiB");
  } finally {
    await p.close();
  }
});

test("a control frame larger than the header limit is refused from its 8-byte header", async () => {
  const p = await pair({ maxHeaderBytes: 4096 });
  const seen = collect(p.client);
  try {
    const h = synStreamFrame(1, 0, Buffer.alloc(0)).subarray(0, 8);
    h.writeUIntBE(10 * 1024 * 1024, 5, 3); // claims 10 MiB, sends none of it
    p.client.write(h);
    await withTimeout(seen.closed, 5000, "session close");
    assert.match(p.server.closeError!.message, /control frame of 10485760 bytes is over the limit of 5120 bytes/);
  } finally {
    await p.close();
  }
});

test("a data frame larger than the limit ends the session naming the limit", async () => {
  const p = await pair({ maxDataFrameBytes: 1024 });
  const seen = collect(p.client);
  try {
    p.client.write(dataFrame(1, 0, Buffer.alloc(2048)));
    await withTimeout(seen.closed, 5000, "session close");
    assert.match(p.server.closeError!.message, /data frame of 2048 bytes is over the limit of 1024 bytes/);
  } finally {
    await p.close();
  }
});

test("a header block with too many pairs is refused naming the limit", async () => {
  const p = await pair({ maxHeaderPairs: 8 });
  const seen = collect(p.client);
  try {
    const c = new HeaderCompressor();
    const block = await c.compress(encodeHeaderBlock(Array.from({ length: 9 }, (_, i): [string, string] => [`h${i}`, "v"])));
    c.close();
    p.client.write(synStreamFrame(1, 0, block));
    await withTimeout(seen.closed, 5000, "session close");
    assert.match(p.server.closeError!.message, /9 name\/value pairs, over the limit of 8/);
  } finally {
    await p.close();
  }
});

test("streams beyond the limit are refused with RST_STREAM REFUSED_STREAM; the session lives on", async () => {
  const p = await pair({ maxStreams: 3 });
  const seen = collect(p.client);
  const opened: SpdyStream[] = [];
  p.server.on("stream", (s: SpdyStream) => opened.push(s));
  try {
    const c = new HeaderCompressor();
    for (let id = 1; id <= 9; id += 2) p.client.write(synStreamFrame(id, 0, await c.compress(encodeHeaderBlock([["streamtype", "data"]]))));
    c.close();
    for (let i = 0; i < 100 && seen.frames().filter((f) => f.type === FrameType.RST_STREAM).length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    const rsts = seen.frames().filter((f) => f.type === FrameType.RST_STREAM).map((f) => parseControl(FrameType.RST_STREAM, 0, f.payload) as { streamId: number; status: number });
    assert.deepEqual(rsts, [{ type: FrameType.RST_STREAM, flags: 0, streamId: 7, status: RstStatus.REFUSED_STREAM }, { type: FrameType.RST_STREAM, flags: 0, streamId: 9, status: RstStatus.REFUSED_STREAM }]);
    assert.equal(opened.length, 3);
    assert.equal(p.server.destroyed, false);
    assert.match(p.limits[0]!.message, /stream 7 refused: 3 streams are open, the limit is 3/);
  } finally {
    await p.close();
  }
});

test("a stream whose unread data goes over its buffer limit is reset with FLOW_CONTROL_ERROR", async () => {
  const p = await pair({ maxStreamBufferBytes: 64 * 1024, maxDataFrameBytes: 32 * 1024 });
  const seen = collect(p.client);
  let stream: SpdyStream | undefined;
  // A second stream whose reader keeps resuming the socket: the first stream's buffer must still not grow past its limit.
  p.server.on("stream", (s: SpdyStream) => { if (!stream) stream = s; else s.resume(); });
  try {
    const c = new HeaderCompressor();
    p.client.write(synStreamFrame(1, 0, await c.compress(encodeHeaderBlock([["streamtype", "stdout"]]))));
    p.client.write(synStreamFrame(3, 0, await c.compress(encodeHeaderBlock([["streamtype", "stdin"]]))));
    for (let i = 0; i < 40; i++) { p.client.write(dataFrame(1, 0, Buffer.alloc(16 * 1024))); p.client.write(dataFrame(3, 0, Buffer.alloc(16 * 1024))); }
    for (let i = 0; i < 100 && !seen.frames().some((f) => f.type === FrameType.RST_STREAM); i++) await new Promise((r) => setTimeout(r, 20));
    const rst = seen.frames().find((f) => f.type === FrameType.RST_STREAM);
    assert.ok(rst, "no RST_STREAM");
    assert.deepEqual(parseControl(FrameType.RST_STREAM, 0, rst.payload), { type: FrameType.RST_STREAM, flags: 0, streamId: 1, status: RstStatus.FLOW_CONTROL_ERROR });
    assert.match(p.limits[0]!.message, /stream 1 has \d+ unread bytes, over the limit of 65536/);
    assert.ok(stream!.destroyed);
    assert.equal(p.server.destroyed, false);
    // Input flows again for the other streams.
    const more: SpdyStream[] = [];
    p.server.on("stream", (s: SpdyStream) => more.push(s));
    p.client.write(synStreamFrame(5, 0, await c.compress(encodeHeaderBlock([["streamtype", "error"]]))));
    c.close();
    for (let i = 0; i < 100 && more.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(more.length, 1, "the session stopped reading after the reset");
  } finally {
    await p.close();
  }
});

for (const [what, limits] of [["bytes", { outHighWaterBytes: 16 * 1024 }], ["frames", {}]] as const) test(`a peer that floods PINGs and never reads stalls itself: the outbound queue stays at its high-water mark (${what})`, async () => {
  const p = await pair(limits);
  try {
    p.client.pause(); // never reads the PING replies
    const flood = Buffer.concat(Array.from({ length: 10_000 }, (_, i) => pingFrame(2 * i + 1)));
    let sent = 0;
    const t0 = Date.now();
    // Keep writing until the kernel buffers on both sides are full and our writes stop draining.
    while (Date.now() - t0 < 3000) {
      if (!p.client.write(flood)) {
        const drained = await Promise.race([once(p.client, "drain").then(() => true), new Promise((r) => setTimeout(() => r(false), 300))]);
        if (!drained) break;
      }
      sent += 10_000;
    }
    assert.ok(sent >= 10_000);
    const q = p.server.queued;
    const l = p.server.limits;
    assert.ok(q.bytes <= l.outHighWaterBytes + 12, `queued ${q.bytes} bytes`);
    assert.ok(q.frames <= l.outHighWaterFrames + 1, `queued ${q.frames} frames`);
    assert.equal(p.server.destroyed, false);
    assert.ok(Date.now() - t0 < 3000, "the peer was never stalled");
  } finally {
    await p.close();
  }
});

test("the outbound queue's hard limit ends the session naming it", async () => {
  const p = await pair({ maxQueuedFrames: 4, outHighWaterBytes: 1024 * 1024 });
  try {
    // Header frames wait for their compression, so the ones opened meanwhile stay queued.
    for (let i = 0; i < 6; i++) p.server.openStream({ streamtype: "data" });
    const err = p.server.closeError;
    assert.ok(err instanceof SpdyLimitError, String(err));
    assert.match(err.message, /outbound queue over its limit of 4 frames/);
    assert.ok(p.server.destroyed);
  } finally {
    await p.close();
  }
});
