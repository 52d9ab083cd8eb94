import assert from "node:assert/strict";
import { test } from "node:test";
import { SPDY3_DICTIONARY } from "./dictionary.ts";
import {
  Flag, FrameType, SpdyProtocolError, dataFrame, decodeHeaderBlock, encodeHeaderBlock, parseControl,
  pingFrame, rstStreamFrame, settingsFrame, splitFrame, synStreamFrame,
} from "./frames.ts";
import { HeaderCompressor, HeaderDecompressor } from "./header-zlib.ts";

test("the SPDY/3 dictionary has the spec's 1423 bytes and starts with the length of \"options\"", () => {
  assert.equal(SPDY3_DICTIONARY.length, 1423);
  assert.deepEqual([...SPDY3_DICTIONARY.subarray(0, 11)], [0, 0, 0, 7, ...Buffer.from("options")]);
  assert.ok(SPDY3_DICTIONARY.toString("latin1").endsWith(",*,enq=0."));
});

test("a data frame round-trips through splitFrame", () => {
  const f = dataFrame(5, Flag.FIN, Buffer.from("abc"));
  assert.deepEqual([...f.subarray(0, 8)], [0, 0, 0, 5, 1, 0, 0, 3]);
  const s = splitFrame(Buffer.concat([f, Buffer.from([0x80])]));
  assert.ok(s);
  assert.equal(s.size, 11);
  assert.deepEqual(s.frame, { control: false, streamId: 5, flags: Flag.FIN, payload: Buffer.from("abc") });
});

test("splitFrame waits for a whole frame", () => {
  const f = dataFrame(1, 0, Buffer.alloc(100));
  assert.equal(splitFrame(f.subarray(0, 7)), undefined);
  assert.equal(splitFrame(f.subarray(0, 107)), undefined);
  assert.ok(splitFrame(f));
});

test("control frames carry version 3 and parse back", () => {
  const syn = splitFrame(synStreamFrame(3, Flag.FIN, Buffer.from("hdr"), 2))!.frame;
  assert.equal(syn.control, true);
  if (!syn.control) return;
  assert.equal(syn.version, 3);
  assert.deepEqual(parseControl(syn.type, syn.flags, syn.payload), { type: FrameType.SYN_STREAM, flags: Flag.FIN, streamId: 3, associatedId: 0, priority: 2, block: Buffer.from("hdr") });
  const rst = splitFrame(rstStreamFrame(7, 5))!.frame;
  assert.ok(rst.control);
  assert.deepEqual(parseControl(rst.type, rst.flags, rst.payload), { type: FrameType.RST_STREAM, flags: 0, streamId: 7, status: 5 });
  const ping = splitFrame(pingFrame(9))!.frame;
  assert.ok(ping.control);
  assert.deepEqual(parseControl(ping.type, ping.flags, ping.payload), { type: FrameType.PING, flags: 0, id: 9 });
  const st = splitFrame(settingsFrame([{ id: 7, value: 65536 }]))!.frame;
  assert.ok(st.control);
  assert.deepEqual(parseControl(st.type, st.flags, st.payload), { type: FrameType.SETTINGS, flags: 0, entries: [{ id: 7, value: 65536, flags: 0 }] });
});

test("malformed control payloads are protocol errors", () => {
  assert.throws(() => parseControl(FrameType.PING, 0, Buffer.alloc(3)), SpdyProtocolError);
  assert.throws(() => parseControl(FrameType.SYN_STREAM, 0, Buffer.alloc(9)), SpdyProtocolError);
  assert.throws(() => parseControl(FrameType.SETTINGS, 0, Buffer.from([0, 0, 0, 2, 0, 0, 0, 1])), SpdyProtocolError);
  assert.equal(parseControl(99, 0, Buffer.alloc(0)).type, "unknown");
});

test("header blocks lower-case names, keep multiple values and reject truncation", () => {
  const b = encodeHeaderBlock([["StreamType", "stdout"], ["X-Multi", ["a", "b"]]]);
  const h = decodeHeaderBlock(b);
  assert.deepEqual(h.get("streamtype"), ["stdout"]);
  assert.deepEqual(h.get("x-multi"), ["a", "b"]);
  assert.throws(() => decodeHeaderBlock(b.subarray(0, b.length - 1)), SpdyProtocolError);
  assert.throws(() => decodeHeaderBlock(Buffer.from([0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0])), SpdyProtocolError);
});

test("header compression keeps one context per direction across blocks", async () => {
  const c = new HeaderCompressor();
  const d = new HeaderDecompressor();
  const blocks = [1, 2, 3].map((i) => encodeHeaderBlock([["streamtype", "stdout"], ["requestid", String(i)]]));
  const packed = await Promise.all(blocks.map((b) => c.compress(b)));
  // Later blocks reuse the history: the repeated header costs less the second time.
  assert.ok(packed[1]!.length < packed[0]!.length);
  for (let i = 0; i < 3; i++) assert.deepEqual(await d.decompress(packed[i]!), blocks[i]);
  c.close();
  d.close();
});

test("a corrupt header stream is a protocol error", async () => {
  const d = new HeaderDecompressor();
  await assert.rejects(d.decompress(Buffer.from("definitely not zlib")), SpdyProtocolError);
  d.close();
});
