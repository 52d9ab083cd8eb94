import { test } from "node:test";
import assert from "node:assert/strict";
import type { ContainerStateName } from "./container-record.ts";
import { canExec, canExit, canStart, canStop, canUpdateResources, isVisible, mayHaveExited, nextContainerState, startRefusal } from "./state.ts";

const ALL: ContainerStateName[] = ["creating", "created", "running", "exited"];

test("transitions: creating -> created -> running -> exited; start may fail into exited", () => {
  assert.equal(nextContainerState("creating", "created"), "created");
  assert.equal(nextContainerState("created", "started"), "running");
  assert.equal(nextContainerState("created", "startFailed"), "exited");
  assert.equal(nextContainerState("created", "exited"), "exited");
  assert.equal(nextContainerState("running", "exited"), "exited");
});

test("no transition leaves exited, and none goes backwards", () => {
  for (const e of ["created", "started", "startFailed", "exited"] as const) assert.equal(nextContainerState("exited", e), undefined);
  assert.equal(nextContainerState("running", "started"), undefined);
  assert.equal(nextContainerState("running", "created"), undefined);
  assert.equal(nextContainerState("creating", "started"), undefined);
  assert.equal(nextContainerState("creating", "exited"), undefined);
});

test("what each state allows", () => {
  const table = Object.fromEntries(ALL.map((s) => [s, [canStart(s), canStop(s), canExit(s), canExec(s), canUpdateResources(s), isVisible(s), mayHaveExited(s)]]));
  assert.deepEqual(table, {
    creating: [false, false, false, false, true, false, false],
    created: [true, true, true, false, true, true, true],
    running: [false, true, true, true, true, true, true],
    exited: [false, false, false, false, false, true, false],
  });
});

test("start refusals name the state", () => {
  assert.match(startRefusal("c1", "running"), /c1 is already running/);
  assert.match(startRefusal("c1", "exited"), /c1 is in state exited; only a created container can be started/);
});
