import { test } from "node:test";
import assert from "node:assert/strict";
import { matchIdPrefix, matchLabels } from "./filters.ts";
import { nowNs } from "../../oci-runtime/foundation/clock.ts";

test("label selectors match subsets only", () => {
  assert.equal(matchLabels({ a: "1", b: "2" }, { a: "1" }), true);
  assert.equal(matchLabels({ a: "1" }, { a: "2" }), false);
  assert.equal(matchLabels({ a: "1" }, { c: "1" }), false);
  assert.equal(matchLabels({}, {}), true);
  assert.equal(matchLabels({ a: "1" }, undefined), true);
});

test("id prefixes", () => {
  assert.equal(matchIdPrefix("abcdef", "abc"), true);
  assert.equal(matchIdPrefix("abcdef", "abd"), false);
  assert.equal(matchIdPrefix("abcdef", ""), true);
});

test("nowNs is in nanoseconds near Date.now()", () => {
  const ms = BigInt(Date.now());
  const ns = nowNs();
  assert.ok(ns / 1_000_000n - ms < 1000n && ns / 1_000_000n - ms > -1000n);
});
