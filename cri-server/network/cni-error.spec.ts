import { test } from "node:test";
import assert from "node:assert/strict";
import { Code } from "../../oci-runtime/foundation/errdefs.ts";
import { isGoneError, parseCniError, pluginError } from "./cni-error.ts";
import type { RunResult } from "../../oci-runtime/foundation/run-command.ts";

const ctx = { plugin: "bridge", command: "ADD", network: "podnet", sandboxId: "sb1" };
const run = (r: Partial<RunResult>): RunResult => ({ code: 1, signal: null, stdout: "", stderr: "", timedOut: false, ...r });

test("parses the spec's error JSON", () => {
  assert.deepEqual(parseCniError('{"cniVersion":"1.0.0","code":7,"msg":"bad config","details":"no ipam"}'), { code: 7, msg: "bad config", details: "no ipam" });
  assert.deepEqual(parseCniError('{"code":100,"msg":"x"}'), { code: 100, msg: "x" });
  assert.equal(parseCniError("plain text"), undefined);
  assert.equal(parseCniError('{"cniVersion":"1.0.0"}'), undefined);
});

test("plugin error message names plugin, command, network, sandbox, message, details and code", () => {
  const e = pluginError(ctx, run({ stdout: '{"code":7,"msg":"invalid config","details":"missing bridge"}' }));
  assert.equal(e.code, Code.INTERNAL);
  assert.equal(e.message, 'cni plugin bridge failed to add network "podnet" for sandbox sb1: invalid config: missing bridge (code 7: invalid network config)');
});

test("without error JSON, stderr and the exit status are used", () => {
  const e = pluginError({ ...ctx, command: "DEL" }, run({ code: 2, stderr: "panic: boom\n" }));
  assert.equal(e.message, 'cni plugin bridge failed to delete network "podnet" for sandbox sb1: exit status 2: panic: boom');
});

test("a timeout is DEADLINE_EXCEEDED naming the plugin", () => {
  const e = pluginError(ctx, run({ code: null, signal: "SIGKILL", timedOut: true }), 500);
  assert.equal(e.code, Code.DEADLINE_EXCEEDED);
  assert.match(e.message, /^cni plugin bridge failed to add network "podnet" for sandbox sb1: timed out after 500 ms/);
});

test("not-found errors are recognised as already gone", () => {
  assert.equal(isGoneError(new Error("failed to find plugin: Link not found")), true);
  assert.equal(isGoneError(new Error("x (code 3: container unknown or does not exist)")), true);
  assert.equal(isGoneError(new Error("permission denied")), false);
});
