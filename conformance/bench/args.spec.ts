import { test } from "node:test";
import assert from "node:assert/strict";
import { BENCHMARKS, parseBenchArgs, UsageError } from "./args.ts";

test("defaults run everything on both runtimes with 20 pods", () => {
  const o = parseBenchArgs([]);
  assert.deepEqual(o.only, [...BENCHMARKS]);
  assert.equal(o.pods, 20);
  assert.deepEqual(o.runtimes, ["berth", "containerd"]);
  assert.equal(o.out, ".bench");
  assert.equal(o.pullReps, 3);
  assert.equal(o.listContainers, 100);
});

test("--only keeps the canonical order and --runtime picks one", () => {
  const o = parseBenchArgs(["--only", "pull,pod-start", "--runtime", "containerd", "--pods", "5", "--out", "/tmp/x"]);
  assert.deepEqual(o.only, ["pod-start", "pull"]);
  assert.deepEqual(o.runtimes, ["containerd"]);
  assert.equal(o.pods, 5);
  assert.equal(o.out, "/tmp/x");
});

test("bad values are refused with the flag named", () => {
  assert.throws(() => parseBenchArgs(["--only", "nope"]), (e: unknown) => e instanceof UsageError && /unknown benchmark "nope"/.test(e.message));
  assert.throws(() => parseBenchArgs(["--pods", "0"]), /--pods must be an integer from 1 to 200, got "0"/);
  assert.throws(() => parseBenchArgs(["--pods", "2.5"]), /--pods/);
  assert.throws(() => parseBenchArgs(["--runtime", "crio"]), /--runtime must be/);
  assert.throws(() => parseBenchArgs(["--bogus"]), UsageError);
});
