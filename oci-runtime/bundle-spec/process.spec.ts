import { test } from "node:test";
import assert from "node:assert/strict";
import { BerthError, Code } from "../foundation/errdefs.ts";
import { newSpec, DEFAULT_PATH } from "./default-spec.ts";
import { mergeEnv, resolveArgs, withCwd, withEnv, withProcessArgs, withRlimits } from "./process.ts";

const isCode = (code: number) => (e: unknown) => e instanceof BerthError && e.code === code;

test("image entrypoint and cmd are used when the config sets neither", () => {
  assert.deepEqual(resolveArgs({ imageEntrypoint: ["/ep"], imageCmd: ["a", "b"] }), ["/ep", "a", "b"]);
});

test("command overrides the entrypoint and drops the image cmd", () => {
  assert.deepEqual(resolveArgs({ command: ["/bin/sh"], imageEntrypoint: ["/ep"], imageCmd: ["x"] }), ["/bin/sh"]);
});

test("args override the image cmd but keep the entrypoint", () => {
  assert.deepEqual(resolveArgs({ args: ["y"], imageEntrypoint: ["/ep"], imageCmd: ["x"] }), ["/ep", "y"]);
});

test("command and args together replace both", () => {
  assert.deepEqual(resolveArgs({ command: ["/c"], args: ["1"], imageEntrypoint: ["/ep"], imageCmd: ["x"] }), ["/c", "1"]);
});

test("nothing to run is invalid argument naming the container", () => {
  assert.throws(() => resolveArgs({ containerName: "web" }), (e) => isCode(Code.INVALID_ARGUMENT)(e) && /web/.test((e as Error).message));
});

test("withProcessArgs sets process.args", async () => {
  const spec = newSpec("rootfs");
  await withProcessArgs({ imageCmd: ["sh"] })(spec, undefined);
  assert.deepEqual(spec.process!.args, ["sh"]);
});

test("CRI env overrides the image env by key and PATH gets a default", () => {
  const env = mergeEnv({ imageEnv: ["A=1", "B=2"], env: [{ key: "B", value: "3" }, { key: "C", value: "x=y" }] });
  assert.deepEqual(env, ["A=1", "B=3", "C=x=y", `PATH=${DEFAULT_PATH}`]);
});

test("the image PATH is kept and HOSTNAME is added when given", () => {
  const env = mergeEnv({ imageEnv: ["PATH=/bin"], hostname: "h1" });
  assert.deepEqual(env, ["HOSTNAME=h1", "PATH=/bin"]);
});

test("withEnv writes process.env", async () => {
  const spec = newSpec("rootfs");
  await withEnv({ env: [{ key: "K", value: "v" }] })(spec, undefined);
  assert.ok(spec.process!.env!.includes("K=v"));
});

test("withCwd prefers the CRI working dir, then the image's, then /", async () => {
  const s = newSpec("r");
  await withCwd({ workingDir: "/w", imageWorkingDir: "/i" })(s, undefined);
  assert.equal(s.process!.cwd, "/w");
  await withCwd({ imageWorkingDir: "/i" })(s, undefined);
  assert.equal(s.process!.cwd, "/i");
  await withCwd({})(s, undefined);
  assert.equal(s.process!.cwd, "/");
  assert.throws(() => withCwd({ workingDir: "rel" })(s, undefined), isCode(Code.INVALID_ARGUMENT));
});

test("withRlimits normalises names and replaces by type", async () => {
  const s = newSpec("r");
  s.process!.rlimits = [{ type: "RLIMIT_NOFILE", soft: 1, hard: 1 }];
  await withRlimits([{ type: "nofile", soft: 10, hard: 20 }, { type: "RLIMIT_NPROC", soft: 5, hard: 5 }])(s, undefined);
  assert.deepEqual(s.process!.rlimits, [{ type: "RLIMIT_NOFILE", soft: 10, hard: 20 }, { type: "RLIMIT_NPROC", soft: 5, hard: 5 }]);
  assert.throws(() => withRlimits([{ type: "bogus", soft: 1, hard: 1 }])(s, undefined), isCode(Code.INVALID_ARGUMENT));
  assert.throws(() => withRlimits([{ type: "nofile", soft: 2, hard: 1 }])(s, undefined), isCode(Code.INVALID_ARGUMENT));
});

test("env names with '=' or NUL and values with NUL are refused naming the variable", () => {
  assert.throws(() => mergeEnv({ env: [{ key: "PATH=/evil:", value: "x" }] }), /config\.envs: name "PATH=\/evil:" must not contain "=" or NUL/);
  assert.throws(() => mergeEnv({ env: [{ key: "A\u0000B", value: "x" }] }), /must not contain "=" or NUL/);
  assert.throws(() => mergeEnv({ env: [{ key: "A", value: "x\u0000y" }] }), /config\.envs: value of "A" must not contain NUL/);
  assert.deepEqual(mergeEnv({ env: [{ key: "A", value: "multi\nline=ok" }] }), ["A=multi\nline=ok", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]);
});
