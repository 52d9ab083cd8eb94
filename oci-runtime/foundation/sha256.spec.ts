import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { JS_HASH_MAX, sha256HexJs, sha256HexText } from "./sha256.ts";

const ref = (d: string | Uint8Array) => createHash("sha256").update(d).digest("hex");

test("FIPS 180-4's examples", () => {
  assert.equal(sha256HexJs(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  assert.equal(sha256HexJs("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  assert.equal(sha256HexJs("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
});

test("agrees with node:crypto at every length around the block and padding edges, and beyond", () => {
  for (let n = 0; n <= 300; n++) {
    const b = randomBytes(n);
    assert.equal(sha256HexJs(b), ref(b), `length ${n}`);
  }
  for (const n of [1000, 4095, 4096, 65_537, 1 << 20]) {
    const b = randomBytes(n);
    assert.equal(sha256HexJs(b), ref(b), `length ${n}`);
  }
});

test("a string is hashed as UTF-8", () => {
  for (const s of ["ü", "名前", "🙂 emoji", "\u0000nul", JSON.stringify({ a: "é", b: [1, 2] })]) assert.equal(sha256HexJs(s), ref(Buffer.from(s, "utf8")));
});

test("sha256HexText: the same digest on both sides of JS_HASH_MAX", () => {
  for (const n of [0, JS_HASH_MAX - 1, JS_HASH_MAX, JS_HASH_MAX + 1, 4 * JS_HASH_MAX]) {
    const t = "é".repeat(n);
    assert.equal(sha256HexText(t), ref(Buffer.from(t, "utf8")), `length ${n}`);
  }
});
