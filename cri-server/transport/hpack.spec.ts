import { test } from "node:test";
import assert from "node:assert/strict";
import { HpackDecoder, HpackError, decodeInteger, encodeBlock, encodeInteger, encodeWithoutIndexing, huffmanCacheSize, huffmanDecode, huffmanEncode } from "./hpack.ts";

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ""), "hex");
const limits = { maxTableSize: 4096, maxHeaderListSize: 65536 };
const pairs = (b: { fields: { name: string; value: string }[] }) => b.fields.map((f) => [f.name, f.value]);

test("integers: RFC 7541 C.1 examples round trip", () => {
  for (const [prefix, value, bytes] of [[5, 10, "0a"], [5, 1337, "1f9a0a"], [8, 42, "2a"]] as const) {
    const out: number[] = [];
    encodeInteger(out, 0, prefix, value);
    assert.equal(Buffer.from(out).toString("hex"), bytes);
    assert.deepEqual(decodeInteger(Buffer.from(out), 0, prefix), [value, out.length]);
  }
  assert.throws(() => decodeInteger(hex("1fffffffff7f"), 0, 5), /exceeds/);
  assert.throws(() => decodeInteger(hex("1f9a"), 0, 5), /ends inside an integer/);
});

test("Huffman: RFC 7541 C.4 strings, all octets round trip, bad padding and EOS refused", () => {
  assert.equal(huffmanEncode(Buffer.from("www.example.com")).toString("hex"), "f1e3c2e5f23a6ba0ab90f4ff");
  assert.equal(huffmanDecode(hex("a8eb10649cbf")).toString(), "no-cache");
  const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  assert.deepEqual(huffmanDecode(huffmanEncode(all)), all);
  assert.throws(() => huffmanDecode(hex("fffffffc")), HpackError); // contains EOS (30 ones)
  assert.throws(() => huffmanDecode(hex("f1e3c2e5f23a6ba0ab90f4ff ff")), /padding longer/);
  assert.throws(() => huffmanDecode(hex("00")), /padding|prefix/); // '0' (00000) then 000 padding
});

test("decoder: RFC 7541 C.3 and C.4 request sequences keep the dynamic table like the encoder", () => {
  for (const blocks of [
    ["828684410f7777772e6578616d706c652e636f6d", "828684be58086e6f2d6361636865", "828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565"],
    ["828684418cf1e3c2e5f23a6ba0ab90f4ff", "828684be5886a8eb10649cbf", "828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf"],
  ]) {
    const d = new HpackDecoder(limits);
    assert.deepEqual(pairs(d.decode(hex(blocks[0]!))), [[":method", "GET"], [":scheme", "http"], [":path", "/"], [":authority", "www.example.com"]]);
    assert.deepEqual(pairs(d.decode(hex(blocks[1]!))), [[":method", "GET"], [":scheme", "http"], [":path", "/"], [":authority", "www.example.com"], ["cache-control", "no-cache"]]);
    const third = d.decode(hex(blocks[2]!));
    assert.deepEqual(pairs(third), [[":method", "GET"], [":scheme", "https"], [":path", "/index.html"], [":authority", "www.example.com"], ["custom-key", "custom-value"]]);
    assert.deepEqual(d.dynamicEntries(), [["custom-key", "custom-value"], ["cache-control", "no-cache"], [":authority", "www.example.com"]]);
    assert.deepEqual(third.fields.map((f) => f.representation), ["indexed", "indexed", "indexed", "indexed", "incremental"]);
  }
});

test("decoder: errors name the problem", () => {
  const d = new HpackDecoder(limits);
  assert.throws(() => d.decode(hex("80")), /index 0/);
  assert.throws(() => d.decode(hex("be")), /beyond the dynamic table/);
  assert.deepEqual(new HpackDecoder(limits).decode(hex("3fe11f")).sizeUpdates, [4096]); // 4096 is allowed ...
  assert.throws(() => new HpackDecoder(limits).decode(hex("3fe21f")), /update to 4097 exceeds the limit 4096/); // ... 4097 is not
  assert.throws(() => new HpackDecoder(limits).decode(hex("82 20")), /after a header field/);
  assert.throws(() => new HpackDecoder(limits).decode(hex("410f7777")), /runs past/);
  const small = new HpackDecoder({ maxTableSize: 4096, maxHeaderListSize: 100 });
  assert.throws(() => small.decode(encodeBlock([{ op: "without", index: 0, name: "x", value: "y".repeat(80) }])), /header list exceeds 100/);
});

test("decoder: size update evicts; an entry larger than the table empties it", () => {
  const d = new HpackDecoder(limits);
  d.decode(encodeBlock([{ op: "incremental", index: 1, value: "a" }, { op: "incremental", index: 0, name: "k", value: "v" }]));
  assert.equal(d.dynamicEntries().length, 2);
  d.decode(encodeBlock([{ op: "size-update", size: 40 }]));
  assert.deepEqual(d.dynamicEntries(), [["k", "v"]]);
  d.decode(encodeBlock([{ op: "incremental", index: 0, name: "big", value: "x".repeat(50) }]));
  assert.deepEqual(d.dynamicEntries(), []);
});

test("encodeWithoutIndexing: decodes to the same list and adds nothing to the table", () => {
  const fields = [{ name: ":authority", value: "localhost" }, { name: ":path", value: "/runtime.v1.RuntimeService/Version" }, { name: "x-odd", value: "\u00ff\u0000" }, { name: "secret", value: "s", representation: "never" as const }];
  const d = new HpackDecoder(limits);
  const out = d.decode(encodeWithoutIndexing(fields));
  assert.deepEqual(pairs(out), fields.map((f) => [f.name, f.value]));
  assert.deepEqual(out.fields.map((f) => f.representation), ["without", "without", "without", "never"]);
  assert.deepEqual(d.dynamicEntries(), []);
});

test("integers: a run of 0x80 continuation octets is refused, not decoded as NaN", () => {
  const long = Buffer.concat([hex("1f"), Buffer.alloc(150, 0x80), hex("00")]);
  assert.throws(() => decodeInteger(long, 0, 5), (err: Error) => err instanceof HpackError && /exceeds/.test(err.message));
  // Five continuation octets of zeros is still a legal (if wasteful) encoding of a small value.
  assert.deepEqual(decodeInteger(hex("1f8080808000"), 0, 5), [31, 6]);
  // A dynamic table size update of "NaN" would lift the table bound: the whole block is refused.
  const d = new HpackDecoder(limits);
  assert.throws(() => d.decode(Buffer.concat([hex("3f"), Buffer.alloc(150, 0x80), hex("00"), hex("82")])), HpackError);
  // A string length of "NaN" likewise.
  assert.throws(() => new HpackDecoder(limits).decode(Buffer.concat([hex("40 7f"), Buffer.alloc(150, 0x80), hex("00")])), HpackError);
});

test("short Huffman strings decode through a bounded cache, with the same results", () => {
  const dec = new HpackDecoder({ maxTableSize: 4096, maxHeaderListSize: 1 << 20 });
  const block = (value: string) => encodeBlock([{ op: "without", index: 4, value, valueHuffman: true }]);
  for (let round = 0; round < 2; round++) {
    for (const v of ["/runtime.v1.RuntimeService/Version", "/runtime.v1.RuntimeService/ListContainers", "", "x"]) {
      assert.equal(dec.decode(block(v)).fields[0]!.value, v);
      assert.equal(dec.decode(block(v)).fields[0]!.valueHuffman, true);
    }
  }
  // A string seen before comes from the cache: decoding it again adds no entry.
  const size = huffmanCacheSize();
  assert.equal(dec.decode(block("/runtime.v1.RuntimeService/Version")).fields[0]!.value, "/runtime.v1.RuntimeService/Version");
  assert.equal(huffmanCacheSize(), size, "a hit");
  assert.equal(dec.decode(block("/runtime.v1.RuntimeService/Status")).fields[0]!.value, "/runtime.v1.RuntimeService/Status");
  assert.ok(huffmanCacheSize() === size + 1 || huffmanCacheSize() === 1, "a miss adds one (or refills an emptied cache)");
  // Two strings whose coded octets collided under the FNV-1a hash an earlier version keyed by.
  for (let i = 0; i < 3; i++) for (const v of ["/p/xj", "/p/7h8d"]) assert.equal(dec.decode(block(v)).fields[0]!.value, v);
  // Every latin1 octet survives, cached or not.
  const all = Array.from({ length: 256 }, (_, i) => String.fromCharCode(i)).join("");
  for (let i = 0; i < 256; i += 32) assert.equal(dec.decode(block(all.slice(i, i + 32))).fields[0]!.value, all.slice(i, i + 32));
  assert.equal(dec.decode(block(all)).fields[0]!.value, all, "a long string, past the cache");
  // Ever new strings: the cache stays bounded.
  for (let i = 0; i < 1000; i++) assert.equal(dec.decode(block(`/x/${i}`)).fields[0]!.value, `/x/${i}`);
  assert.ok(huffmanCacheSize() <= 256, `cache size ${huffmanCacheSize()}`);
  // A malformed string still fails, the first time and the next (it is never kept).
  const bad = Buffer.from([0x04, 0x81, 0x00]); // :path, Huffman, one octet of 0 bits: padding not all ones
  for (let i = 0; i < 2; i++) assert.throws(() => dec.decode(bad), HpackError);
});
