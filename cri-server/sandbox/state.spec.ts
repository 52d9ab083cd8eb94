import { test } from "node:test";
import assert from "node:assert/strict";
import { PodSandboxState } from "../../proto/gen/runtime/v1/api_pb.js";
import type { SandboxState } from "./sandbox-record.ts";
import { canRunContainers, canStopSandbox, criSandboxState, expectsInfra, isSandboxVisible, nextSandboxState } from "./state.ts";

const ALL: SandboxState[] = ["creating", "ready", "notready"];

test("transitions: creating -> ready -> notready; notready stays", () => {
  assert.equal(nextSandboxState("creating", "ready"), "ready");
  assert.equal(nextSandboxState("ready", "stopped"), "notready");
  assert.equal(nextSandboxState("ready", "infraDied"), "notready");
  assert.equal(nextSandboxState("notready", "stopped"), "notready");
  assert.equal(nextSandboxState("creating", "cleanupFailed"), "notready");
  assert.equal(nextSandboxState("notready", "ready"), undefined, "a stopped pod is never ready again");
  assert.equal(nextSandboxState("ready", "ready"), undefined);
});

test("what each state allows", () => {
  const table = Object.fromEntries(ALL.map((s) => [s, [canStopSandbox(s), canRunContainers(s), isSandboxVisible(s), expectsInfra(s), criSandboxState(s)]]));
  assert.deepEqual(table, {
    creating: [true, false, false, false, PodSandboxState.SANDBOX_NOTREADY],
    ready: [true, true, true, true, PodSandboxState.SANDBOX_READY],
    notready: [true, false, true, false, PodSandboxState.SANDBOX_NOTREADY],
  });
});
