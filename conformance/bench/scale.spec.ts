import { test } from "node:test";
import assert from "node:assert/strict";
import { scaleMetrics } from "./scenarios/scale.ts";

test("scale metrics: per size latency p50/p99 and daemon RSS/PSS, sandbox-only beyond --scale-full, then after the load", () => {
  const names = scaleMetrics([20, 100, 250], 100).map(([m]) => m);
  assert.deepEqual(names, [
    "20 pods: pod start p50", "20 pods: pod start p99", "20 pods: daemon RSS", "20 pods: daemon PSS",
    "100 pods: pod start p50", "100 pods: pod start p99", "100 pods: daemon RSS", "100 pods: daemon PSS",
    "250 pods: sandbox-only pod start p50", "250 pods: sandbox-only pod start p99", "250 pods: daemon RSS", "250 pods: daemon PSS",
    "back at 20 pods after 250: daemon RSS", "back at 20 pods after 250: daemon PSS", "after removing all: daemon RSS",
  ]);
  assert.deepEqual(scaleMetrics([], 100), []);
});
