import { test } from "node:test";
import assert from "node:assert/strict";
import { BerthError, Code } from "../../oci-runtime/foundation/errdefs.ts";
import { BANDWIDTH_BURST, parseQuantity, podBandwidth } from "./bandwidth.ts";

test("Kubernetes quantities become numbers", () => {
  assert.equal(parseQuantity("10M"), 10_000_000);
  assert.equal(parseQuantity("1.5k"), 1500);
  assert.equal(parseQuantity("1Mi"), 1048576);
  assert.equal(parseQuantity("2e6"), 2_000_000);
  assert.equal(parseQuantity("100000"), 100000);
  assert.equal(parseQuantity("1500m"), 2, "rounded up");
  for (const bad of ["", "M", "10 M", "10MB", "-1M", "1.2.3", "0x10", "1e9999", "x".repeat(100)]) assert.equal(parseQuantity(bad), undefined, bad);
});

test("annotations become the CNI bandwidth capability in bits", () => {
  assert.equal(podBandwidth({}), undefined);
  assert.deepEqual(podBandwidth({ "kubernetes.io/ingress-bandwidth": "10M" }), { ingressRate: 10_000_000, ingressBurst: BANDWIDTH_BURST });
  assert.deepEqual(podBandwidth({ "kubernetes.io/egress-bandwidth": "1Mi", "kubernetes.io/ingress-bandwidth": "2M" }),
    { ingressRate: 2_000_000, ingressBurst: BANDWIDTH_BURST, egressRate: 1048576, egressBurst: BANDWIDTH_BURST });
});

test("bad values are INVALID_ARGUMENT naming the annotation and value", () => {
  for (const [k, v, why] of [
    ["kubernetes.io/ingress-bandwidth", "fast", /not a quantity/],
    ["kubernetes.io/egress-bandwidth", "10", /less than the minimum of 1k/],
    ["kubernetes.io/egress-bandwidth", "2P", /more than the maximum of 1P/],
  ] as const) {
    assert.throws(() => podBandwidth({ [k]: v }), (e) => e instanceof BerthError && e.code === Code.INVALID_ARGUMENT
      && e.message.includes(k) && e.message.includes(JSON.stringify(v)) && why.test(e.message));
  }
});
