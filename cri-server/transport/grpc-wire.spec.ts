import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { decodeStatusMessage, encodeStatusMessage, frameMessage, parseTimeout, RequestReader, WireError } from "./grpc-wire.ts";

const prefix = (flag: number, length: number) => { const b = Buffer.alloc(5); b[0] = flag; b.writeUInt32BE(length, 1); return b; };
const kindOf = (fn: () => unknown) => { try { fn(); } catch (err) { assert.ok(err instanceof WireError, String(err)); return err.kind; } return "none"; };

describe("RequestReader", () => {
  test("a message split at every byte comes back whole", () => {
    const body = Buffer.from("hello, runtime");
    const r = new RequestReader(1024);
    for (const b of frameMessage(body)) r.push(Buffer.from([b]));
    assert.deepEqual(r.finish(), body);
    assert.equal(r.held, 5 + body.length);
  });
  test("an empty message is a message", () => {
    const r = new RequestReader(16);
    r.push(prefix(0, 0));
    assert.equal(r.finish().length, 0);
  });
  test("the length is refused from the prefix, before any body arrives", () => {
    const r = new RequestReader(100);
    assert.equal(kindOf(() => r.push(prefix(0, 101))), "too-large");
    assert.equal(r.held, 5, "nothing beyond the prefix was allocated or held");
    assert.throws(() => new RequestReader(100).push(prefix(0, 4294967295)), /4294967295 bytes; berth accepts at most 100/);
  });
  test("compressed and unknown flags are refused", () => {
    assert.equal(kindOf(() => new RequestReader(100).push(prefix(1, 3))), "compressed");
    assert.equal(kindOf(() => new RequestReader(100).push(prefix(2, 3))), "bad-flag");
    assert.equal(kindOf(() => new RequestReader(100).push(prefix(255, 0))), "bad-flag");
  });
  test("a second message is refused, even one byte of it", () => {
    const r = new RequestReader(100);
    r.push(frameMessage(Buffer.from("a")));
    assert.equal(kindOf(() => r.push(Buffer.from([0]))), "second-message");
    const both = new RequestReader(100);
    assert.equal(kindOf(() => both.push(Buffer.concat([frameMessage(Buffer.from("a")), frameMessage(Buffer.from("b"))]))), "second-message");
  });
  test("no message, a cut prefix and a cut body are told apart", () => {
    assert.equal(kindOf(() => new RequestReader(100).finish()), "no-message");
    const cutPrefix = new RequestReader(100);
    cutPrefix.push(Buffer.from([0, 0]));
    assert.equal(kindOf(() => cutPrefix.finish()), "truncated");
    const cutBody = new RequestReader(100);
    cutBody.push(Buffer.concat([prefix(0, 10), Buffer.from("abc")]));
    assert.equal(kindOf(() => cutBody.finish()), "truncated");
    assert.match((() => { try { cutBody.finish(); } catch (e) { return (e as Error).message; } return ""; })(), /8 bytes of 15/);
  });
});

describe("grpc-timeout", () => {
  test("every unit", () => {
    assert.equal(parseTimeout("2H"), 7_200_000);
    assert.equal(parseTimeout("3M"), 180_000);
    assert.equal(parseTimeout("4S"), 4_000);
    assert.equal(parseTimeout("5m"), 5);
    assert.equal(parseTimeout("6000u"), 6);
    assert.equal(parseTimeout("7000000n"), 7);
    assert.equal(parseTimeout("99999999H"), 99_999_999 * 3_600_000);
  });
  test("anything else is refused", () => {
    for (const v of ["", "S", "1", "1s", "123456789S", "-1S", "1.5S", " 1S", "1S ", "0x10S", "１S"]) assert.equal(parseTimeout(v), undefined, JSON.stringify(v));
  });
});

describe("grpc-message", () => {
  test("printable ASCII passes; '%', control octets and UTF-8 are percent-encoded, and come back", () => {
    assert.equal(encodeStatusMessage("container \"abc\" not found"), "container \"abc\" not found");
    assert.equal(encodeStatusMessage("100% done\nnext"), "100%25 done%0Anext");
    assert.equal(encodeStatusMessage("naïve"), "na%C3%AFve");
    for (const m of ["plain", "100%", "a\r\nb\0c", "名前 ✓", "%zz", "\u{1F600}"]) assert.equal(decodeStatusMessage(encodeStatusMessage(m)), m);
    for (const c of encodeStatusMessage("\u0000\u001f\u007f%é")) assert.ok(c.charCodeAt(0) >= 0x20 && c.charCodeAt(0) <= 0x7e);
  });
});
