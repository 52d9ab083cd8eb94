// cri-server/server.ts with stand-in handlers on a real unix socket and a real client (grpc-js,
// which berthd no longer uses): what a handler sees of deadlines and cancellation, streaming with
// backpressure, a response too large to send, and shutdown. The same server over berthd's real
// handlers is tested in conformance/suite/grpc-server.test.ts.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import * as http2 from "node:http2";
import { connect as netConnect } from "node:net";
import { frameMessage } from "./transport/grpc-wire.ts";
import { ImageService, RuntimeService } from "../proto/gen/runtime/v1/api_pb.js";
import { connect, codeOf, grpc, type CriClient } from "../conformance/lib/cri-client.ts";
import { createLogger } from "../oci-runtime/foundation/log.ts";
import { listen, MAX_MESSAGE_BYTES, type CriServer } from "./server.ts";
import { Encoded, type Call, type StreamCall } from "./rpc.ts";
import type { Context } from "./context.ts";
import { encodeWithoutIndexing, HpackDecoder } from "./transport/hpack.ts";
import { FLAG, FRAME, H2_ERROR, frameHeader } from "./transport/h2.ts";
import { callsOpenedAndReset, dataFrame, grpcRequestHeaders, handshake, headersFrame, response, u32, type RawH2 } from "../conformance/lib/raw-h2.ts";

const lines: string[] = [];
const ctx = { log: createLogger({}, (l) => { lines.push(l); }) } as unknown as Context;

describe("gRPC server with stand-in handlers", () => {
  let dir: string;
  let server: CriServer;
  let client: CriClient;
  const seen: { method: string; deadline?: Date; aborted?: unknown }[] = [];
  let streamAborted: unknown;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "berth-server-"));
    server = await listen(join(dir, "s.sock"), [
      {
        service: RuntimeService,
        impls: {
          // Waits until released or aborted, and records what it saw.
          async status(_c: Context, _r: unknown, call: Call) {
            const rec: (typeof seen)[number] = { method: call.method, ...(call.deadline ? { deadline: call.deadline } : {}) };
            seen.push(rec);
            await new Promise<void>((resolve) => {
              call.signal.addEventListener("abort", () => { rec.aborted = call.signal.reason; resolve(); }, { once: true });
            });
            return {};
          },
          async listContainers() { return new Encoded(new Uint8Array(MAX_MESSAGE_BYTES + 1)); },
          // 8 MiB holding each 4-byte word's offset, to check every reply arrives whole and in order
          async listPodSandbox() { const b = Buffer.alloc(8 << 20); for (let i = 0; i < b.length; i += 4) b.writeUInt32BE(i, i); return new Encoded(b); },
          async version() { throw new Error("a secret internal detail"); },
          // 4000 events of 16 KiB each: more than any window, so writes wait for the client.
          async getContainerEvents(_c: Context, _r: unknown, call: StreamCall<never>) {
            for (let i = 0; i < 4000 && !call.signal.aborted; i++) await call.write({ containerId: `c${i}`.padEnd(16384, "x") } as never);
            if (call.signal.aborted) streamAborted = call.signal.reason;
          },
        },
      },
      { service: ImageService, impls: {} },
    ], ctx);
    client = connect(join(dir, "s.sock"));
  });
  after(async () => { client?.close(); await server?.shutdown(1000); await rm(dir, { recursive: true, force: true }); });

  test("the deadline reaches the handler as call.deadline, and its signal aborts at it with DEADLINE_EXCEEDED", async () => {
    const t0 = Date.now();
    await assert.rejects(client.runtime.status({}, { timeoutMs: 500 }), (e) => codeOf(e) === grpc.status.DEADLINE_EXCEEDED);
    const rec = seen.at(-1)!;
    assert.equal(rec.method, "/runtime.v1.RuntimeService/Status");
    assert.ok(rec.deadline && Math.abs(rec.deadline.getTime() - (t0 + 500)) < 200, `deadline ${rec.deadline?.toISOString()}`);
    for (let i = 0; i < 50 && !rec.aborted; i++) await sleep(20);
    assert.equal((rec.aborted as { code?: number }).code, grpc.status.DEADLINE_EXCEEDED);
  });

  test("a reset within 100 ms of the deadline is the deadline (clients reset at their own, a little earlier); one before is a cancel", async () => {
    const session = http2.connect("http://localhost", { createConnection: () => netConnect(join(dir, "s.sock")) });
    session.on("error", () => {});
    try {
      for (const [resetAt, code] of [[250, grpc.status.DEADLINE_EXCEEDED], [30, grpc.status.CANCELLED]] as const) {
        const n = seen.length;
        const st = session.request({ ":method": "POST", ":path": "/runtime.v1.RuntimeService/Status", "content-type": "application/grpc", "grpc-timeout": "300m" });
        st.on("error", () => {});
        st.end(frameMessage(new Uint8Array()));
        await sleep(resetAt);
        st.close(http2.constants.NGHTTP2_CANCEL);
        for (let i = 0; i < 50 && !(seen.length > n && seen.at(-1)!.aborted); i++) await sleep(10);
        assert.equal((seen.at(-1)!.aborted as { code?: number } | undefined)?.code, code, `reset at ${resetAt} ms`);
      }
    } finally { session.close(); }
  });

  test("a client's cancel (RST_STREAM) aborts the handler's signal with CANCELLED", async () => {
    const { messages, cancel } = client.runtime.getContainerEvents({});
    const it = messages[Symbol.asyncIterator]();
    await it.next();
    cancel();
    await assert.rejects(async () => { for (;;) { const r = await it.next(); if (r.done) break; } }, (e) => codeOf(e) === grpc.status.CANCELLED);
    for (let i = 0; i < 100 && !streamAborted; i++) await sleep(20);
    assert.equal((streamAborted as { code?: number } | undefined)?.code, grpc.status.CANCELLED, "the handler saw the cancel");
  });

  test("a server stream hands 64 MB to a slow reader, every message in order (writes wait for the client's window)", async () => {
    const { messages } = client.runtime.getContainerEvents({});
    let n = 0;
    for await (const m of messages) {
      assert.equal((m as { containerId: string }).containerId.slice(0, 8).replace(/x+$/, ""), `c${n}`);
      n++;
      if (n % 1000 === 0) await sleep(50); // a slow reader
    }
    assert.equal(n, 4000);
  });

  test("eight 8 MiB replies at once on one connection all arrive whole and in order", async () => {
    const raw = new grpc.Client(`unix://${join(dir, "s.sock")}`, grpc.credentials.createInsecure(), { "grpc.max_receive_message_length": 16 << 20 });
    try {
      const replies = await Promise.all(Array.from({ length: 8 }, () => new Promise<Buffer>((resolve, reject) => {
        raw.makeUnaryRequest("/runtime.v1.RuntimeService/ListPodSandbox", (x: Buffer) => x, (b: Buffer) => b, Buffer.alloc(0), new grpc.Metadata(), { deadline: Date.now() + 30_000 }, (e, r) => e ? reject(e) : resolve(r!));
      })));
      for (const r of replies) {
        assert.equal(r.length, 8 << 20);
        for (let i = 0; i < r.length; i += 4 * 4099) assert.equal(r.readUInt32BE(i), i, `word at ${i}`);
        assert.equal(r.readUInt32BE(r.length - 4), r.length - 4);
      }
    } finally { raw.close(); }
  });

  test("a response over 16 MiB is RESOURCE_EXHAUSTED naming its size, not sent", async () => {
    await assert.rejects(client.runtime.listContainers({}), (e: Error) => codeOf(e) === grpc.status.RESOURCE_EXHAUSTED && e.message.includes(`is ${MAX_MESSAGE_BYTES + 1} bytes; the limit is ${MAX_MESSAGE_BYTES}`));
  });

  test("an unexpected error is INTERNAL with the request id, never its text", async () => {
    await assert.rejects(client.runtime.version({}), (e: Error) => codeOf(e) === grpc.status.INTERNAL && /internal error \(request [0-9a-f]{12}\)/.test(e.message) && !e.message.includes("secret"));
    assert.ok(lines.some((l) => l.includes("a secret internal detail")), "the real error is logged");
  });

  test("a method without a handler is UNIMPLEMENTED naming it", async () => {
    await assert.rejects(client.image.listImages({}), (e: Error) => codeOf(e) === grpc.status.UNIMPLEMENTED && e.message.includes("ListImages is not implemented by berth yet"));
  });

  test("shutdown lets an in-flight call finish, then closes", async () => {
    const dir2 = await mkdtemp(join(tmpdir(), "berth-server-"));
    let free!: () => void;
    const s2 = await listen(join(dir2, "s.sock"), [{ service: RuntimeService, impls: { async status() { await new Promise<void>((r) => { free = r; }); return {}; } } }], ctx);
    const c2 = connect(join(dir2, "s.sock"));
    try {
      const p = c2.runtime.status({});
      for (let i = 0; i < 100 && !free; i++) await sleep(10);
      let closed = false;
      const down = s2.shutdown(5000).then(() => { closed = true; });
      await sleep(200);
      assert.equal(closed, false, "shutdown waits for the call");
      free();
      await p;
      await down;
      const t0 = Date.now();
      const s3 = await listen(join(dir2, "t.sock"), [{ service: RuntimeService, impls: { async status() { await sleep(60_000, undefined, { ref: false }); return {}; } } }], ctx);
      const c3 = connect(join(dir2, "t.sock"));
      const stuck = c3.runtime.status({}).catch((e) => e);
      await sleep(100);
      await s3.shutdown(300);
      assert.ok(Date.now() - t0 < 5000, "a call that never ends is cut at the grace");
      assert.ok(codeOf(await stuck) !== undefined);
      c3.close();
    } finally {
      c2.close();
      await rm(dir2, { recursive: true, force: true });
    }
  });
});

const requestBlock = (method: string) => grpcRequestHeaders(`/runtime.v1.RuntimeService/${method}`);
const empty = frameMessage(new Uint8Array());

describe("HTTP/2 bounds with stand-in handlers, raw frames", () => {
  let dir: string;
  let server: CriServer;
  let socket: string;
  /** Handlers of Status wait for this, whatever their signal says (as a pull stuck in I/O would). */
  let freeStuck!: () => void;
  let stuck = new Promise<void>((r) => { freeStuck = r; });
  let started = 0;
  const eightMiB = Buffer.alloc(8 << 20, 7);
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "berth-h2-"));
    socket = join(dir, "s.sock");
    server = await listen(socket, [
      {
        service: RuntimeService,
        impls: {
          async status() { started++; await stuck; return {}; },
          async listPodSandbox() { return new Encoded(eightMiB); },
          async listContainers() { return new Encoded(Buffer.alloc(200 << 10, 3)); },
          async version() { return { version: "x", runtimeName: "stand-in", runtimeVersion: "x", runtimeApiVersion: "v1" }; },
        },
      },
    ], ctx, undefined, { requestArrivalMs: 300, queuedResponseBytes: 36 << 20, sendStallMs: 600 });
  });
  after(async () => { freeStuck(); await server?.shutdown(1000); await rm(dir, { recursive: true, force: true }); });
  const open = () => handshake(socket, { settings: [] });

  test("a call counts against the 1000 until its handler ends: 1000 calls reset at once still hold their slots", async () => {
    const c = await open();
    try {
      c.write(...callsOpenedAndReset(1000, requestBlock("Status"), empty));
      for (let i = 0; i < 200 && started < 1000; i++) await sleep(10);
      assert.equal(started, 1000, "every handler started");
      c.write(headersFrame(2001, requestBlock("Version")), dataFrame(2001, empty));
      const rst = await c.until((f) => f.streamId === 2001 && (f.type === FRAME.RST_STREAM || f.type === FRAME.HEADERS), "an answer on stream 2001");
      assert.equal(rst.type, FRAME.RST_STREAM, "refused while 1000 handlers run");
      assert.equal(rst.payload.readUInt32BE(0), H2_ERROR.REFUSED_STREAM);
      freeStuck();
      stuck = new Promise<void>((r) => { freeStuck = r; });
      await sleep(100);
      c.write(headersFrame(2003, requestBlock("Version")), dataFrame(2003, empty));
      const r = await response(c, new HpackDecoder({ maxTableSize: 4096, maxHeaderListSize: 1 << 20 }), 2003);
      assert.equal(r.headers["grpc-status"], "0", "answered once the handlers ended");
    } finally { c.close(); }
  });

  test("a request whose message stops arriving is ended after the arrival bound (DEADLINE_EXCEEDED), its bytes released", async () => {
    const c = await open();
    try {
      c.write(headersFrame(1, requestBlock("Version")), dataFrame(1, Buffer.from([0, 0, 0, 1, 0]), 0)); // a 256-byte message, never sent
      const r = await response(c, new HpackDecoder({ maxTableSize: 4096, maxHeaderListSize: 1 << 20 }), 1);
      assert.equal(r.headers["grpc-status"], String(grpc.status.DEADLINE_EXCEEDED));
      assert.match(decodeURIComponent(r.headers["grpc-message"] ?? ""), /did not arrive within 0.3 s/);
    } finally { c.close(); }
  });

  test("responses queued for clients that do not read are bounded, per connection (a quarter) and across connections", async () => {
    // 36 MiB in all, 9 MiB a connection; each reply is 8 MiB and no client opens its windows (65,535)
    const conns: RawH2[] = [];
    const call = async (c: RawH2, sid: number) => {
      c.write(headersFrame(sid, requestBlock("ListPodSandbox")), dataFrame(sid, empty));
      const f = await c.until((x) => x.streamId === sid && x.type === FRAME.HEADERS, `headers on stream ${sid}`);
      return f.flags & FLAG.END_STREAM ? new HpackDecoder({ maxTableSize: 4096, maxHeaderListSize: 1 << 20 }).decode(f.payload).fields : undefined;
    };
    try {
      for (let i = 0; i < 4; i++) {
        const c = await open();
        conns.push(c);
        assert.equal(await call(c, 1), undefined, `connection ${i + 1}: its first reply is queued (headers, then data waiting)`);
      }
      const second = await call(conns[0]!, 3);
      assert.equal(second?.find((f) => f.name === "grpc-status")?.value, String(grpc.status.RESOURCE_EXHAUSTED), "a connection's second 8 MiB is over its quarter");
      const c5 = await open();
      conns.push(c5);
      const fifth = await call(c5, 1);
      assert.equal(fifth?.find((f) => f.name === "grpc-status")?.value, String(grpc.status.RESOURCE_EXHAUSTED), "a fifth connection's reply is over the whole bound");
      assert.match(decodeURIComponent(fifth?.find((f) => f.name === "grpc-message")?.value ?? ""), /wait for clients that do not read/);
    } finally { for (const c of conns) c.close(); }
    await sleep(100);
    // the closed connection gave its queue back: a reader gets its 8 MiB
    const c2 = await handshake(socket, { settings: [[4, 0x7fffffff]] });
    try {
      c2.write(frameHeader(4, FRAME.WINDOW_UPDATE, 0, 0), u32(0x7fffffff - 65_535));
      c2.write(headersFrame(1, requestBlock("ListPodSandbox")), dataFrame(1, empty));
      const r = await response(c2, new HpackDecoder({ maxTableSize: 4096, maxHeaderListSize: 1 << 20 }), 1);
      assert.equal(r.headers["grpc-status"], "0");
      assert.equal(r.message?.length, 8 << 20);
    } finally { c2.close(); }
  });

  test("a reply whose client never opens its window is reset after the stall bound (CANCEL), and its bytes go back", async () => {
    const c = await handshake(socket, { settings: [[4, 0]] }); // a stream window of 0: no DATA can go
    try {
      c.write(headersFrame(1, requestBlock("ListPodSandbox")), dataFrame(1, empty));
      const rst = await c.until((f) => f.streamId === 1 && f.type === FRAME.RST_STREAM, "RST_STREAM of the stalled reply", 5000);
      assert.equal(rst.payload.readUInt32BE(0), H2_ERROR.CANCEL);
      // what it held is free again: 4 more connections can queue their 8 MiB under the 36 MiB bound
      const more: RawH2[] = [];
      try {
        for (let i = 0; i < 4; i++) {
          const m = await open();
          more.push(m);
          m.write(headersFrame(1, requestBlock("ListPodSandbox")), dataFrame(1, empty));
          const h = await m.until((f) => f.streamId === 1 && f.type === FRAME.HEADERS, "the reply's headers");
          assert.equal(h.flags & FLAG.END_STREAM, 0, `connection ${i + 1}: queued, not refused`);
        }
      } finally { for (const m of more) m.close(); }
    } finally { c.close(); }
  });

  test("replies on one connection take turns: the last of 40 (200 KiB each) starts before half of all the bytes went out", async () => {
    const c = await handshake(socket, { settings: [[4, 0x7fffffff]] });
    try {
      c.write(frameHeader(4, FRAME.WINDOW_UPDATE, 0, 0), u32(0x7fffffff - 65_535));
      const parts: Buffer[] = [];
      for (let i = 0; i < 40; i++) parts.push(headersFrame(1 + 2 * i, requestBlock("ListContainers")), dataFrame(1 + 2 * i, empty));
      c.write(...parts);
      let bytes = 0;
      let lastStarted = -1;
      let ended = 0;
      while (ended < 40) {
        const f = await c.until((x) => x.type === FRAME.DATA || (x.type === FRAME.HEADERS && (x.flags & FLAG.END_STREAM) !== 0), "DATA or trailers", 20_000);
        if (f.type === FRAME.HEADERS) { ended++; continue; }
        if (f.streamId === 79 && lastStarted < 0) lastStarted = bytes;
        bytes += f.payload.length;
      }
      assert.ok(lastStarted >= 0 && lastStarted < bytes / 2, `stream 79's first DATA after ${lastStarted} of ${bytes} bytes`);
    } finally { c.close(); }
  });

  test("an answer given as the request ends is not followed by RST_STREAM (the exchange is complete)", async () => {
    const c = await open();
    try {
      c.write(headersFrame(1, encodeWithoutIndexing([
        { name: ":method", value: "POST" }, { name: ":scheme", value: "http" }, { name: ":path", value: "/no.Such/Method" },
        { name: "content-type", value: "application/grpc" },
      ]), FLAG.END_HEADERS | FLAG.END_STREAM));
      await c.until((f) => f.streamId === 1 && f.type === FRAME.HEADERS && (f.flags & FLAG.END_STREAM) !== 0, "the trailers-only answer");
      c.write(headersFrame(3, requestBlock("Version")), dataFrame(3, empty));
      const frames: { type: number; streamId: number }[] = [];
      await c.until((f) => { frames.push(f); return f.streamId === 3 && (f.flags & FLAG.END_STREAM) !== 0; }, "the answer on stream 3");
      assert.deepEqual(frames.filter((f) => f.type === FRAME.RST_STREAM), []);
    } finally { c.close(); }
  });
});

describe("shutdown with a reply still being written", () => {
  test("the last reply reaches a client that reads slowly, whole and with its status, before the socket closes", async () => {
    const dir = await mkdtemp(join(tmpdir(), "berth-h2-"));
    const socket = join(dir, "s.sock");
    const reply = Buffer.alloc(4 << 20, 9);
    const s = await listen(socket, [{ service: RuntimeService, impls: { async listPodSandbox() { return new Encoded(reply); } } }], ctx);
    let c: RawH2 | undefined;
    try {
      c = await handshake(socket, { settings: [[4, 0x7fffffff]] });
      c.write(frameHeader(4, FRAME.WINDOW_UPDATE, 0, 0), u32(0x7fffffff - 65_535));
      c.sock.pause(); // read nothing yet
      c.write(headersFrame(1, requestBlock("ListPodSandbox")), dataFrame(1, empty));
      await sleep(200);
      const down = s.shutdown(10_000);
      await sleep(200);
      // read in short bursts: when berth queues the last frame, some of the reply still waits in its socket buffer
      const slow = setInterval(() => { c!.sock.resume(); setTimeout(() => c!.sock.pause(), 2); }, 25);
      const r = await response(c, new HpackDecoder({ maxTableSize: 4096, maxHeaderListSize: 1 << 20 }), 1).finally(() => clearInterval(slow));
      assert.equal(r.headers["grpc-status"], "0");
      assert.equal(r.message?.length, reply.length);
      await down;
    } finally {
      c?.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
