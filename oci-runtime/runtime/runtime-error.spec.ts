import { test } from "node:test";
import assert from "node:assert/strict";
import { Code } from "../foundation/errdefs.ts";
import { lastLogError, runtimeError, runtimeMessage } from "./runtime-error.ts";
import { RuntimeHandlers } from "./handlers.ts";
import { stripLogrus, execProcess, mergeEnv } from "./exec-sync.ts";

test("the last error in a json log is the runtime's message", () => {
  const log = `{"level":"warning","msg":"w"}\nnot json\n{"level":"error","msg":"runc create failed: exec: \\"foo\\": executable file not found in $PATH"}\n`;
  assert.equal(lastLogError(log), "runc create failed: exec: \"foo\": executable file not found in $PATH");
  assert.equal(runtimeMessage("", "line1\nboom\n", "exit status 1"), "boom");
  assert.equal(runtimeMessage("", "", "exit status 1"), "exit status 1");
});

test("runtime failures are classified and keep the message", () => {
  const nf = runtimeError("runc state of container x", "container does not exist");
  assert.equal(nf.code, Code.NOT_FOUND);
  assert.match(nf.message, /container x: container does not exist/);
  assert.equal(runtimeError("runc kill container x", "container not running").code, Code.FAILED_PRECONDITION);
  assert.equal(runtimeError("runc create container x", "container with id exists: x").code, Code.ALREADY_EXISTS);
  const ex = runtimeError("runc create container x", "exec: \"foo\": executable file not found in $PATH");
  assert.equal(ex.code, Code.INTERNAL);
  assert.match(ex.message, /executable file not found/);
});

test("handlers: default for the empty name, unknown names are invalid argument naming them", () => {
  const h = RuntimeHandlers.fromConfig({ runc: { binary: "/usr/bin/runc", root: "/run/berth/runc" }, crun: { binary: "/usr/bin/crun", root: "/run/berth/crun" } }, "runc");
  assert.equal(h.get("").name, "runc");
  assert.equal(h.get("crun").binary, "/usr/bin/crun");
  assert.deepEqual(h.get("runc").globalArgs(), ["--root", "/run/berth/runc"]);
  assert.throws(() => h.get("kata"), (e: unknown) => (e as { code: number }).code === Code.INVALID_ARGUMENT && /kata/.test((e as Error).message));
});

test("exec process: args replaced, env merged by key, user and cwd overridden, no terminal", () => {
  const base = { terminal: true, user: { uid: 1, gid: 1 }, args: ["sleep"], env: ["A=1", "PATH=/bin"], cwd: "/", consoleSize: { height: 1, width: 1 } };
  const p = execProcess(base, ["ls", "-l"], { env: ["A=2"], cwd: "/tmp", user: { uid: 5, gid: 6 } });
  assert.deepEqual(p, { terminal: false, user: { uid: 5, gid: 6 }, args: ["ls", "-l"], env: ["A=2", "PATH=/bin"], cwd: "/tmp" });
  assert.deepEqual(base.args, ["sleep"]);
  assert.deepEqual(mergeEnv(["X"], ["X=1"]), ["X=1"]);
});

test("logrus text lines are reduced to their message", () => {
  assert.equal(stripLogrus(`time="t" level=error msg="exec failed: \\"x\\" not found"`), `exec failed: "x" not found`);
});
