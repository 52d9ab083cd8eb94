import { test } from "node:test";
import assert from "node:assert/strict";
import { parsePodCidr } from "../network/pod-cidr.ts";

test("valid CIDRs, single and dual-stack", () => {
  for (const c of ["10.244.0.0/16", "fd00::/64", "10.1.0.0/24,fd00:1::/64"]) parsePodCidr(c);
});

test("invalid CIDRs name the value", () => {
  for (const c of ["10.0.0.0", "10.0.0.0/33", "fd00::/129", "x/8", "10.0.0.0/8/8", "10.0.0.0/a"]) {
    assert.throws(() => parsePodCidr(c), (e: Error) => e.message.includes(JSON.stringify(c.split(",")[0])));
  }
});
