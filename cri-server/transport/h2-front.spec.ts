import { test } from "node:test";
import assert from "node:assert/strict";
import { CLIENT_PREFACE, ClientFrameFilter, DEFAULT_FRONT_LIMITS, FLAG, FRAME, authorityRefused, frameHeader } from "./h2-front.ts";
import { HpackDecoder, encodeBlock, type EncodeOp } from "./hpack.ts";

const settings = frameHeader(0, FRAME.SETTINGS, 0, 0);
const headers = (sid: number, block: Buffer, flags: number = FLAG.END_HEADERS) => Buffer.concat([frameHeader(block.length, FRAME.HEADERS, flags, sid), block]);
const data = (sid: number, payload: Buffer, flags: number = FLAG.END_STREAM) => Buffer.concat([frameHeader(payload.length, FRAME.DATA, flags, sid), payload]);

// What grpc-go < 1.58 sends for its first call: :authority is the socket path, indexed incrementally.
const firstCall: EncodeOp[] = [
  { op: "indexed", index: 3 }, { op: "indexed", index: 6 },
  { op: "incremental", index: 5, value: "/runtime.v1.RuntimeService/Version", valueHuffman: true },
  { op: "incremental", index: 1, value: "/run/berth/berth.sock", valueHuffman: true },
  { op: "incremental", index: 31, value: "application/grpc", valueHuffman: true },
  { op: "incremental", index: 58, value: "grpc-go/1.51.0", valueHuffman: true },
  { op: "incremental", index: 0, name: "te", value: "trailers", valueHuffman: true },
];
// The second call on the connection refers to those entries in the dynamic table (62 = newest).
const secondCall: EncodeOp[] = [
  { op: "indexed", index: 3 }, { op: "indexed", index: 6 },
  { op: "incremental", index: 5, value: "/runtime.v1.RuntimeService/Status", valueHuffman: true },
  { op: "indexed", index: 66 }, { op: "indexed", index: 65 }, { op: "indexed", index: 64 }, { op: "indexed", index: 63 },
];

/** Parses forwarded bytes the way nghttp2 would, decoding header blocks with a fresh table. */
function serverView(bytes: Buffer) {
  assert.ok(bytes.subarray(0, 24).equals(CLIENT_PREFACE));
  const d = new HpackDecoder({ maxTableSize: 4096, maxHeaderListSize: 1 << 20 });
  const frames: { type: number; flags: number; sid: number; payload: Buffer; headers?: [string, string][] }[] = [];
  let block: Buffer[] = [];
  for (let pos = 24; pos < bytes.length;) {
    const len = bytes.readUIntBE(pos, 3);
    const f = { type: bytes[pos + 3]!, flags: bytes[pos + 4]!, sid: bytes.readUInt32BE(pos + 5), payload: bytes.subarray(pos + 9, pos + 9 + len) } as (typeof frames)[number];
    assert.ok(pos + 9 + len <= bytes.length, "whole frames only");
    pos += 9 + len;
    if (f.type === FRAME.HEADERS || f.type === FRAME.CONTINUATION) {
      block.push(f.type === FRAME.HEADERS && f.flags & FLAG.PRIORITY ? f.payload.subarray(5) : f.payload);
      if (f.flags & FLAG.END_HEADERS) { f.headers = d.decode(Buffer.concat(block)).fields.map((x) => [x.name, x.value]); block = []; }
    }
    frames.push(f);
  }
  return { frames, table: d.dynamicEntries() };
}

function feedAll(filter: ClientFrameFilter, input: Buffer, chunk: number): Buffer {
  const out: Buffer[] = [];
  for (let i = 0; i < input.length; i += chunk) out.push(...filter.feed(input.subarray(i, i + chunk)));
  return Buffer.concat(out);
}

test("authorityRefused: the octets nghttp2 refuses", () => {
  for (const ok of ["localhost", "127.0.0.1:1234", "[::1]:80", "a.b-c_d~e%20", ""]) assert.equal(authorityRefused(ok), false, ok);
  for (const bad of ["/run/berth/berth.sock", "a b", "x\u0000", "a?b", "é"]) assert.equal(authorityRefused(bad), true, bad);
});

test("an old grpc-go connection: :authority rewritten, later blocks re-encoded without touching nghttp2's table, any chunking", () => {
  const input = Buffer.concat([CLIENT_PREFACE, settings, headers(1, encodeBlock(firstCall)), data(1, Buffer.alloc(5)), headers(3, encodeBlock(secondCall)), data(3, Buffer.from([0, 0, 0, 0, 2, 8, 1]))]);
  for (const chunk of [1, 7, 4096]) {
    const filter = new ClientFrameFilter();
    const rewritten: string[] = [];
    filter.onRewrite = (from) => rewritten.push(from);
    const { frames, table } = serverView(feedAll(filter, input, chunk));
    assert.deepEqual(rewritten, ["/run/berth/berth.sock", "/run/berth/berth.sock"], "the second block names it through the client's table");
    assert.deepEqual(filter.stats, { rewritten: 2, reencoded: 2 });
    const hs = frames.filter((f) => f.headers);
    const expect = (path: string): [string, string][] => [[":method", "POST"], [":scheme", "http"], [":path", path], [":authority", "localhost"], ["content-type", "application/grpc"], ["user-agent", "grpc-go/1.51.0"], ["te", "trailers"]];
    assert.deepEqual(hs[0]!.headers, expect("/runtime.v1.RuntimeService/Version"));
    assert.deepEqual(hs[1]!.headers, expect("/runtime.v1.RuntimeService/Status"));
    assert.deepEqual(table, [], "nghttp2's dynamic table is never used after the rewrite");
    assert.deepEqual(frames.map((f) => [f.type, f.sid]), [[FRAME.SETTINGS, 0], [FRAME.HEADERS, 1], [FRAME.DATA, 1], [FRAME.HEADERS, 3], [FRAME.DATA, 3]]);
    assert.deepEqual(frames[4]!.payload, Buffer.from([0, 0, 0, 0, 2, 8, 1]), "DATA passes unchanged");
  }
});

test("a client whose first block is valid passes byte for byte and the filter steps aside", () => {
  const ok = firstCall.map((o) => (o.op === "incremental" && o.index === 1 ? { ...o, value: "localhost" } : o));
  const input = Buffer.concat([CLIENT_PREFACE, settings, headers(1, encodeBlock(ok)), data(1, Buffer.alloc(5)), headers(3, encodeBlock(secondCall))]);
  const filter = new ClientFrameFilter();
  assert.deepEqual(feedAll(filter, input, 3), input);
  assert.equal(filter.state, "pipe");
  assert.deepEqual(filter.stats, { rewritten: 0, reencoded: 0 });
});

test("HEADERS + CONTINUATION with padding and priority: reassembled, priority kept, padding dropped", () => {
  const block = encodeBlock(firstCall);
  const prio = Buffer.from([0, 0, 0, 0, 15]);
  const part1 = Buffer.concat([Buffer.from([4]), prio, block.subarray(0, 10), Buffer.alloc(4)]);
  const input = Buffer.concat([
    CLIENT_PREFACE,
    frameHeader(part1.length, FRAME.HEADERS, FLAG.PADDED | FLAG.PRIORITY | FLAG.END_STREAM, 1), part1,
    frameHeader(block.length - 10, FRAME.CONTINUATION, FLAG.END_HEADERS, 1), block.subarray(10),
  ]);
  const { frames } = serverView(feedAll(new ClientFrameFilter(), input, 5));
  assert.equal(frames.length, 1);
  assert.equal(frames[0]!.flags, FLAG.PRIORITY | FLAG.END_STREAM | FLAG.END_HEADERS);
  assert.deepEqual(frames[0]!.payload.subarray(0, 5), prio);
  assert.equal(frames[0]!.headers![3]![1], "localhost");
});

test("a re-encoded block larger than a frame is split into CONTINUATION frames", () => {
  const big: EncodeOp[] = [...firstCall, { op: "without", index: 0, name: "x-big", value: "v".repeat(40_000) }];
  const input = Buffer.concat([CLIENT_PREFACE, frameHeader(16_384, FRAME.HEADERS, 0, 1)]);
  const raw = encodeBlock(big);
  const parts = [Buffer.concat([input, raw.subarray(0, 16_384)])];
  for (let p = 16_384; p < raw.length; p += 16_384) {
    const piece = raw.subarray(p, p + 16_384);
    parts.push(Buffer.concat([frameHeader(piece.length, FRAME.CONTINUATION, p + 16_384 >= raw.length ? FLAG.END_HEADERS : 0, 1), piece]));
  }
  const { frames } = serverView(feedAll(new ClientFrameFilter(), Buffer.concat(parts), 10_000));
  assert.deepEqual(frames.map((f) => f.type), [FRAME.HEADERS, FRAME.CONTINUATION, FRAME.CONTINUATION]);
  assert.ok(frames.every((f) => f.payload.length <= 16_384));
  assert.equal(frames[2]!.headers!.find(([n]) => n === "x-big")![1].length, 40_000);
});

const poisoned = (out: Buffer) => out.subarray(-10).equals(Buffer.concat([frameHeader(1, FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1), Buffer.from([0x80])]));

test("limits and HPACK errors become a block nghttp2 must refuse, and nothing more is forwarded", () => {
  const cases: [string, Buffer][] = [
    ["bad HPACK", headers(1, Buffer.from([0xbf, 0x20]))],
    ["frame over the size limit", frameHeader(DEFAULT_FRONT_LIMITS.maxFrameSize + 1, FRAME.HEADERS, FLAG.END_HEADERS, 1)],
    ["CONTINUATION flood", Buffer.concat([frameHeader(1, FRAME.HEADERS, 0, 1), Buffer.from([0x82]), ...Array.from({ length: 17 }, () => Buffer.concat([frameHeader(1, FRAME.CONTINUATION, 0, 1), Buffer.from([0x82])]))])],
    ["header list too large", headers(1, encodeBlock([{ op: "without", index: 0, name: "x", value: "y".repeat(66_000 - 40) }]).subarray(0, 16_384), 0)],
  ];
  for (const [name, frames] of cases) {
    const filter = new ClientFrameFilter();
    let out = Buffer.concat(filter.feed(Buffer.concat([CLIENT_PREFACE, settings, frames])));
    if (name === "header list too large") {
      const raw = encodeBlock([{ op: "without", index: 0, name: "x", value: "y".repeat(66_000 - 40) }]);
      for (let p = 16_384; p < raw.length; p += 16_384) {
        const piece = raw.subarray(p, p + 16_384);
        out = Buffer.concat([out, ...filter.feed(Buffer.concat([frameHeader(piece.length, FRAME.CONTINUATION, p + 16_384 >= raw.length ? FLAG.END_HEADERS : 0, 1), piece]))]);
      }
    }
    assert.ok(poisoned(out), name);
    assert.equal(filter.state, "dead", name);
    assert.deepEqual(filter.feed(data(1, Buffer.alloc(5))), [], `${name}: later bytes dropped`);
  }
});

test("frame-order errors are handed to nghttp2 unchanged", () => {
  const block = encodeBlock(firstCall);
  const stray = Buffer.concat([frameHeader(3, FRAME.CONTINUATION, FLAG.END_HEADERS, 1), block.subarray(0, 3)]);
  const interleaved = Buffer.concat([frameHeader(3, FRAME.HEADERS, 0, 1), block.subarray(0, 3), data(1, Buffer.alloc(1))]);
  const streamZero = headers(0, block);
  for (const bytes of [stray, interleaved, streamZero]) {
    const input = Buffer.concat([CLIENT_PREFACE, settings, bytes]);
    const filter = new ClientFrameFilter();
    assert.deepEqual(feedAll(filter, input, 2), input);
    assert.equal(filter.state, "pipe");
  }
  const notH2 = Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  assert.deepEqual(feedAll(new ClientFrameFilter(), notH2, 4), notH2);
});

test("after the filter steps aside, later header blocks are still held to the frame, CONTINUATION and block limits", () => {
  const ok = firstCall.map((o) => (o.op === "incremental" && o.index === 1 ? { ...o, value: "localhost" } : o));
  const start = Buffer.concat([CLIENT_PREFACE, settings, headers(1, encodeBlock(ok)), data(1, Buffer.alloc(5))]);
  const L = DEFAULT_FRONT_LIMITS;
  const cont = (n: number, size: number, last = false) => Array.from({ length: n }, (_, i) => Buffer.concat([frameHeader(size, FRAME.CONTINUATION, last && i === n - 1 ? FLAG.END_HEADERS : 0, 3), Buffer.alloc(size, 0x82)]));
  const cases: [string, Buffer][] = [
    ["frame over the size limit", frameHeader(L.maxFrameSize + 1, FRAME.HEADERS, FLAG.END_HEADERS, 3)],
    ["CONTINUATION over the size limit", Buffer.concat([frameHeader(1, FRAME.HEADERS, 0, 3), Buffer.from([0x82]), frameHeader(L.maxFrameSize + 1, FRAME.CONTINUATION, 0, 3)])],
    ["CONTINUATION flood", Buffer.concat([frameHeader(1, FRAME.HEADERS, 0, 3), Buffer.from([0x82]), ...cont(L.maxContinuations + 1, 1)])],
    ["block over the size limit", Buffer.concat([frameHeader(L.maxFrameSize, FRAME.HEADERS, 0, 3), Buffer.alloc(L.maxFrameSize, 0x82), ...cont(Math.ceil(L.maxBlockSize / L.maxFrameSize), L.maxFrameSize)])],
  ];
  for (const [name, bytes] of cases) {
    for (const chunk of [5, 100_000]) {
      const filter = new ClientFrameFilter();
      const out = feedAll(filter, Buffer.concat([start, bytes]), chunk);
      assert.ok(out.subarray(0, start.length).equals(start), `${name}: the first call passed unchanged`);
      assert.ok(out.subarray(-10).equals(Buffer.concat([frameHeader(1, FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 3), Buffer.from([0x80])])), `${name} (chunks of ${chunk})`);
      assert.equal(filter.state, "dead", name);
      assert.deepEqual(filter.feed(data(3, Buffer.alloc(5))), [], `${name}: later bytes dropped`);
    }
  }
  // Within the limits a later block with CONTINUATIONs passes byte for byte.
  const fine = Buffer.concat([start, frameHeader(1, FRAME.HEADERS, 0, 3), Buffer.from([0x82]), ...cont(L.maxContinuations, 1, true), data(3, Buffer.alloc(70_000, 7))]);
  const filter = new ClientFrameFilter();
  assert.ok(feedAll(filter, fine, 4093).equals(fine));
  assert.equal(filter.state, "pipe");
});

// berth's early SETTINGS (sortConnection): the client's ACK of it must never reach nghttp2.
const ack = frameHeader(0, FRAME.SETTINGS, FLAG.ACK, 0);
const cleanCall: EncodeOp[] = firstCall.map((o) => o.op === "incremental" && o.index === 1 ? { ...o, value: "localhost" } : o);

test("dropFirstSettingsAck: exactly the first empty SETTINGS ACK is removed, wherever it falls", () => {
  const bytes = Buffer.concat([CLIENT_PREFACE, settings, ack, headers(1, encodeBlock(cleanCall)), data(1, Buffer.from("x")), ack]);
  for (const split of [1, 7, 9, 33, 34, 40, bytes.length]) {
    const f = new ClientFrameFilter(DEFAULT_FRONT_LIMITS, { dropFirstSettingsAck: true });
    const out: Buffer[] = [];
    for (let p = 0; p < bytes.length; p += split) out.push(...f.feed(bytes.subarray(p, p + split)));
    const v = serverView(Buffer.concat(out)).frames;
    assert.deepEqual(v.map((x) => [x.type, x.flags]), [[FRAME.SETTINGS, 0], [FRAME.HEADERS, FLAG.END_HEADERS], [FRAME.DATA, FLAG.END_STREAM], [FRAME.SETTINGS, FLAG.ACK]], `split ${split}: the second ACK (nghttp2's) passes`);
    assert.equal(f.canStepAside, true);
  }
});

test("dropFirstSettingsAck: an ACK after the first block is removed too (the front goes on), and one with a payload is not", () => {
  const f = new ClientFrameFilter(DEFAULT_FRONT_LIMITS, { dropFirstSettingsAck: true });
  const first = f.feed(Buffer.concat([CLIENT_PREFACE, settings, headers(1, encodeBlock(cleanCall))]));
  assert.equal(f.state, "pipe");
  assert.equal(f.canStepAside, false, "the ACK has not come: nghttp2 cannot take the socket yet");
  const later = f.feed(Buffer.concat([ack, ack]));
  assert.equal(Buffer.concat(later).length, 9, "one of the two ACKs passes");
  assert.equal(serverView(Buffer.concat([...first, ...later])).frames.length, 3);
  const g = new ClientFrameFilter(DEFAULT_FRONT_LIMITS, { dropFirstSettingsAck: true });
  const odd = Buffer.concat([frameHeader(6, FRAME.SETTINGS, FLAG.ACK, 0), Buffer.alloc(6)]);
  const out = g.feed(Buffer.concat([CLIENT_PREFACE, settings, odd]));
  assert.equal(serverView(Buffer.concat(out)).frames.length, 2, "a malformed ACK goes to nghttp2, which refuses it");
});

test("without dropFirstSettingsAck every ACK passes, and a rewritten block never lets nghttp2 take the socket", () => {
  const f = new ClientFrameFilter();
  const out = f.feed(Buffer.concat([CLIENT_PREFACE, settings, ack, headers(1, encodeBlock(firstCall))]));
  assert.equal(serverView(Buffer.concat(out)).frames.filter((x) => x.type === FRAME.SETTINGS).length, 2);
  assert.equal(f.translating, true);
  assert.equal(f.canStepAside, false);
});
