import assert from "node:assert/strict";
import { test } from "node:test";
import { MAX_EXEC_ARG_BYTES, TokenStore } from "./tokens.ts";

const exec = { kind: "exec" as const, request: { containerId: "c1", cmd: ["ls"], tty: false, stdin: false, stdout: true, stderr: true } };

test("a token is consumed once", () => {
  const s = new TokenStore();
  const t = s.issue(exec);
  assert.match(t, /^[A-Za-z0-9_-]{32}$/);
  assert.deepEqual(s.consume(t, "exec"), exec);
  assert.equal(s.consume(t, "exec"), undefined);
});

test("a token expires after its ttl", () => {
  let now = 1000;
  const s = new TokenStore({ ttlMs: 60_000, now: () => now });
  const t1 = s.issue(exec);
  const t2 = s.issue(exec);
  now += 59_999;
  assert.ok(s.consume(t1, "exec"));
  now += 1;
  assert.equal(s.consume(t2, "exec"), undefined);
  assert.equal(s.size, 0);
});

test("a token only works for the kind it was issued for", () => {
  const s = new TokenStore();
  const t = s.issue(exec);
  assert.equal(s.consume(t, "attach"), undefined);
  assert.equal(s.consume(t, "exec"), undefined);
});

test("the store is bounded", () => {
  const s = new TokenStore({ maxTokens: 2 });
  const t1 = s.issue(exec);
  s.issue(exec);
  s.issue(exec);
  assert.equal(s.size, 2);
  assert.equal(s.consume(t1, "exec"), undefined);
});

test("an Exec command execve could not take, or too large to keep, gets no token", () => {
  const s = new TokenStore();
  const withCmd = (cmd: string[]) => ({ ...exec, request: { ...exec.request, cmd } });
  assert.throws(() => s.issue(withCmd(["sh", "-c", "a\0b"])), /cmd\[2\] contains a NUL byte/);
  assert.throws(() => s.issue(withCmd(["echo", "x".repeat(MAX_EXEC_ARG_BYTES + 1)])), /cmd\[1\] is 131073 bytes, the limit is 131072/);
  assert.throws(() => s.issue(withCmd(Array(9).fill("x".repeat(MAX_EXEC_ARG_BYTES)))), /cmd is 1179648 bytes, the limit is 1048576/);
  assert.throws(() => s.issue(withCmd(Array(4097).fill("a"))), /cmd has 4097 arguments, the limit is 4096/);
  assert.throws(() => s.issue(withCmd([])), /cmd must not be empty/);
  assert.equal(s.size, 0);
  assert.ok(s.issue(withCmd(["echo", "x".repeat(MAX_EXEC_ARG_BYTES)])));
});

test("live tokens hold at most maxBytes of Exec commands: the oldest are evicted", () => {
  const s = new TokenStore({ maxBytes: 3 * MAX_EXEC_ARG_BYTES });
  const big = { ...exec, request: { ...exec.request, cmd: ["echo", "x".repeat(MAX_EXEC_ARG_BYTES - 1000)] } };
  const tokens = Array.from({ length: 5 }, () => s.issue(big));
  assert.ok(s.bytes <= 3 * MAX_EXEC_ARG_BYTES, `${s.bytes} bytes held`);
  assert.equal(s.size, 3);
  assert.equal(s.consume(tokens[0]!, "exec"), undefined);
  assert.ok(s.consume(tokens[4]!, "exec"));
  assert.equal(s.size, 2);
});
