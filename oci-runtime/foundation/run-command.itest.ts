import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describeFailure, runCommand } from "./run-command.ts";

test("collects stdout, stderr and the exit status; stdin is written and closed", async () => {
  const r = await runCommand("/bin/sh", ["-c", "cat; echo oops >&2; exit 3"], { stdin: "héllo\n" });
  assert.deepEqual(r, { code: 3, signal: null, stdout: "héllo\n", stderr: "oops\n", timedOut: false });
  assert.equal(describeFailure(r), "exit status 3: oops");
});

test("without stdin the binary reads /dev/null; env and cwd are passed", async () => {
  const dir = await mkdtemp(join(tmpdir(), "berth-run-"));
  try {
    const r = await runCommand("/bin/sh", ["-c", "cat; pwd; echo $X"], { env: { X: "y", PATH: "/usr/bin:/bin" }, cwd: dir });
    assert.equal(r.stdout, `${dir}\ny\n`);
    assert.equal(r.code, 0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("a binary that cannot be started resolves with spawnError", async () => {
  const r = await runCommand("/nonexistent/berth-no-such-binary", []);
  assert.equal((r.spawnError as NodeJS.ErrnoException | undefined)?.code, "ENOENT");
  assert.match(describeFailure(r), /ENOENT/);
});

test("a timeout SIGKILLs the whole process group", async () => {
  // The grandchild keeps stdout open: only killing the group lets the run finish.
  const r = await runCommand("/bin/sh", ["-c", "sleep 300 & wait"], { timeoutMs: 200, processGroup: true });
  assert.equal(r.timedOut, true);
  assert.equal(r.signal, "SIGKILL");
  assert.equal(describeFailure(r), "timed out");
});

test("a timeout without a process group SIGKILLs the binary", async () => {
  const r = await runCommand("/bin/sh", ["-c", "exec sleep 300"], { timeoutMs: 200 });
  assert.equal(r.timedOut, true);
  assert.equal(r.signal, "SIGKILL");
});
