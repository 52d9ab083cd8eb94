import { test } from "node:test";
import assert from "node:assert/strict";
import { BENCHMARKS, parseBenchArgs, UsageError } from "./args.ts";

test("defaults run everything on both runtimes with 20 pods", () => {
  const o = parseBenchArgs([]);
  assert.deepEqual(o.only, [...BENCHMARKS]);
  assert.equal(o.pods, 20);
  assert.deepEqual(o.runtimes, ["berth", "containerd"]);
  assert.equal(o.out, ".bench");
  assert.equal(o.pullReps, 5);
  assert.equal(o.rounds, 5);
  assert.equal(o.listContainers, 100);
  assert.deepEqual(o.scale, [20, 100, 250]);
  assert.equal(o.scaleFull, 100);
});

test("--scale takes ascending pod counts up to 250", () => {
  assert.deepEqual(parseBenchArgs(["--scale", "5, 10", "--scale-full", "0"]).scale, [5, 10]);
  assert.equal(parseBenchArgs(["--scale-full", "0"]).scaleFull, 0);
  assert.throws(() => parseBenchArgs(["--scale", "20,10"]), /--scale sizes must ascend, got "20,10"/);
  assert.throws(() => parseBenchArgs(["--scale", "20,251"]), /--scale must be an integer from 1 to 250, got "251"/);
  assert.throws(() => parseBenchArgs(["--scale", "1,2,3,4,5,6,7,8,9"]), /at most 8/);
  assert.throws(() => parseBenchArgs(["--scale", ""]), /--scale must be an integer/);
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
  assert.throws(() => parseBenchArgs(["--rounds", "21"]), /--rounds must be an integer from 1 to 20, got "21"/);
  assert.equal(parseBenchArgs(["--rounds", "3"]).rounds, 3);
  assert.throws(() => parseBenchArgs(["--bogus"]), UsageError);
});
