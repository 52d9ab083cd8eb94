// sortConnection over real unix sockets: which connections nghttp2 reads itself ("direct") and
// which keep the front layer, and that each path gets every byte the client sent, minus the ACK
// of berth's early SETTINGS.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { connect, createServer, type Server, type Socket } from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { CLIENT_PREFACE, EARLY_SETTINGS, FLAG, FRAME, FrontConnection, frameHeader, sortConnection } from "./h2-front.ts";
import { HpackDecoder, encodeBlock, type EncodeOp } from "./hpack.ts";

const settings = frameHeader(0, FRAME.SETTINGS, 0, 0);
const ack = frameHeader(0, FRAME.SETTINGS, FLAG.ACK, 0);
const headers = (block: Buffer) => Buffer.concat([frameHeader(block.length, FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1), block]);
const call = (authority: string): EncodeOp[] => [
  { op: "indexed", index: 3 }, { op: "indexed", index: 6 },
  { op: "without", index: 5, value: "/runtime.v1.RuntimeService/Version" },
  { op: "without", index: 1, value: authority },
];
const clean = headers(encodeBlock(call("localhost")));
const old = headers(encodeBlock(call("/run/berth/berth.sock")));

type Outcome = { how: "direct" | "front" | "gone"; bytes: Buffer };

describe("sortConnection", () => {
  let dir: string;
  let server: Server;
  let next: (o: Outcome) => void;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "berth-sort-"));
    server = createServer((socket) => {
      socket.on("error", () => {});
      const report = next; // this connection's test
      let handed = false;
      const collect = (how: Outcome["how"], stream: Socket | FrontConnection) => {
        handed = true;
        const chunks: Buffer[] = [];
        stream.on("data", (c: Buffer) => chunks.push(c));
        // what the path delivers within 300 ms of the decision
        setTimeout(() => { report({ how, bytes: Buffer.concat(chunks) }); stream.destroy(); }, 300);
        stream.resume();
      };
      socket.once("close", () => { if (!handed) report({ how: "gone", bytes: Buffer.alloc(0) }); });
      sortConnection(socket, { direct: (s) => collect("direct", s), front: (c) => collect("front", c) }, undefined, { waitMs: 400, maxBytes: 4096 });
    });
    await new Promise<void>((r) => server.listen(join(dir, "s.sock"), r));
  });
  after(async () => { server?.close(); await rm(dir, { recursive: true, force: true }); });

  /** Connects, waits for berth's early SETTINGS, then runs `send`; resolves with the first outcome. */
  async function run(send: (c: Socket) => Promise<void> | void): Promise<Outcome> {
    const outcome = new Promise<Outcome>((r) => { let done = false; next = (o) => { if (!done) { done = true; r(o); } }; });
    const c = connect(join(dir, "s.sock"));
    c.on("error", () => {});
    const [first] = await once(c, "data") as [Buffer];
    assert.deepEqual(first.subarray(0, 9), EARLY_SETTINGS, "berth speaks first: an empty SETTINGS");
    await send(c);
    const o = await outcome;
    c.destroy();
    return o;
  }

  test("a client that ACKs the early SETTINGS and sends a clean block: direct, every byte but the ACK", async () => {
    const o = await run((c) => { c.write(Buffer.concat([CLIENT_PREFACE, settings, ack, clean])); });
    assert.equal(o.how, "direct");
    assert.deepEqual(o.bytes, Buffer.concat([CLIENT_PREFACE, settings, clean]));
  });

  test("the same in odd pieces, with a frame cut at the decision: the rest still arrives, in order", async () => {
    const tail = frameHeader(4, FRAME.PING, 0, 0);
    const o = await run(async (c) => {
      const all = Buffer.concat([CLIENT_PREFACE, settings, ack, clean, tail.subarray(0, 5)]);
      for (let p = 0; p < all.length; p += 7) { c.write(all.subarray(p, p + 7)); await sleep(1); }
      await sleep(20);
      c.write(Buffer.concat([tail.subarray(5), Buffer.alloc(4)]));
    });
    assert.equal(o.how, "direct");
    assert.deepEqual(o.bytes, Buffer.concat([CLIENT_PREFACE, settings, clean, tail, Buffer.alloc(4)]));
  });

  test("an old grpc-go block (socket path as :authority): front, rewritten to localhost, no ACK", async () => {
    const o = await run((c) => { c.write(Buffer.concat([CLIENT_PREFACE, settings, ack, old])); });
    assert.equal(o.how, "front");
    const at = CLIENT_PREFACE.length + settings.length;
    assert.equal(o.bytes[at + 3], FRAME.HEADERS, "the block follows the client's SETTINGS: no ACK between");
    const block = o.bytes.subarray(at + 9, at + 9 + o.bytes.readUIntBE(at, 3));
    const fields = new HpackDecoder({ maxTableSize: 4096, maxHeaderListSize: 65536 }).decode(block).fields;
    assert.equal(fields.find((f) => f.name === ":authority")?.value, "localhost", "rewritten");
    assert.ok(!o.bytes.includes(ack), "the ACK is gone");
  });

  test("a clean block before the ACK: front, which drops the ACK when it comes", async () => {
    const o = await run(async (c) => { c.write(Buffer.concat([CLIENT_PREFACE, settings, clean])); await sleep(50); c.write(Buffer.concat([ack, ack])); });
    assert.equal(o.how, "front");
    assert.deepEqual(o.bytes, Buffer.concat([CLIENT_PREFACE, settings, clean, ack]), "one ACK of two passes");
  });

  test("a client that says nothing more: front when the wait runs out", async () => {
    const t0 = Date.now();
    const o = await run((c) => { c.write(Buffer.concat([CLIENT_PREFACE, settings])); });
    assert.equal(o.how, "front");
    assert.ok(Date.now() - t0 >= 400, "after the wait");
  });

  test("more bytes than the bound before a block: front", async () => {
    const ping = Buffer.concat([frameHeader(8, FRAME.PING, 0, 0), Buffer.alloc(8)]);
    const o = await run((c) => { c.write(Buffer.concat([CLIENT_PREFACE, settings, ...Array(300).fill(ping)])); });
    assert.equal(o.how, "front");
  });

  test("not HTTP/2: front (raw), which hands nghttp2 the bytes to refuse", async () => {
    const o = await run((c) => { c.write("GET / HTTP/1.1\r\n\r\n"); });
    assert.equal(o.how, "front");
    assert.equal(o.bytes.toString(), "GET / HTTP/1.1\r\n\r\n");
  });

  test("a client that leaves while berth waits: the socket is destroyed, nothing is handed on", async () => {
    const o = await run((c) => { c.end(CLIENT_PREFACE); });
    assert.equal(o.how, "gone");
  });
});
