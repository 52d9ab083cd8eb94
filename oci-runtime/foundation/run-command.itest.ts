import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { describeFailure, runCommand, unfinishedError, useSpawner } from "./run-command.ts";
import { Spawner } from "./spawner.ts";
import { BerthError, Code } from "./errdefs.ts";
import { processGroupMembers } from "../../conformance/lib/procs.ts";

const BIN = "/usr/local/libexec/berth/berth-spawn";

// Every case runs twice: forked from this process (no spawner), and through berth-spawn as berthd
// runs them (useSpawner). Both paths must give the same results.
for (const mode of ["fork", "berth-spawn"] as const) describe(mode, () => {
  let spawner: Spawner | undefined;
  before(() => {
    if (mode === "berth-spawn") { spawner = new Spawner(BIN); useSpawner(spawner); }
  });
  after(() => {
    useSpawner(undefined);
    spawner?.close();
  });

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
    const r = await runCommand("/bin/sh", ["-c", "sleep 300 & wait"], { timeoutMs: 200 });
    assert.equal(r.timedOut, true);
    assert.equal(r.signal, "SIGKILL");
    assert.equal(r.timeoutMs, 200);
    assert.match(describeFailure(r), /timed out after 0\.2 s/);
    const e = unfinishedError("sleeping", "/bin/sh", r);
    assert.equal(e?.code, Code.DEADLINE_EXCEEDED);
    assert.match(e!.message, /sleeping: \/bin\/sh did not finish within its limit of 0\.2 s/);
  });

  test("a timeout without a process group SIGKILLs the binary", async () => {
    const r = await runCommand("/bin/sh", ["-c", "exec sleep 300"], { timeoutMs: 200 });
    assert.equal(r.timedOut, true);
    assert.equal(r.signal, "SIGKILL");
  });

  test("a binary that cannot be started resolves with spawnError when its output goes to a file too", async () => {
    // The case that left RunPodSandbox pending forever: with an output file Node emits "error" and never "exit".
    const dir = await mkdtemp(join(tmpdir(), "berth-run-"));
    try {
      const outputFile = join(dir, "out");
      const r = await Promise.race([
        runCommand("/nonexistent/berth-no-such-runtime", ["create"], { outputFile }),
        new Promise<"hung">((res) => setTimeout(() => res("hung"), 5000)),
      ]);
      assert.notEqual(r, "hung", "runCommand never settled");
      const res = r as Exclude<typeof r, "hung">;
      assert.equal((res.spawnError as NodeJS.ErrnoException | undefined)?.code, "ENOENT");
      assert.equal(existsSync(outputFile), false, "the output file is removed");
      const e = unfinishedError("runtime handler x: create container c", "/nonexistent/berth-no-such-runtime", res);
      assert.equal(e?.code, Code.FAILED_PRECONDITION);
      assert.match(e!.message, /cannot run \/nonexistent\/berth-no-such-runtime/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("a file that is not executable resolves with spawnError (EACCES)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "berth-run-"));
    try {
      const { writeFile } = await import("node:fs/promises");
      await writeFile(join(dir, "runc"), "#!/bin/sh\nexit 0\n", { mode: 0o644 });
      const r = await runCommand(join(dir, "runc"), [], { outputFile: join(dir, "out") });
      assert.equal((r.spawnError as NodeJS.ErrnoException | undefined)?.code, "EACCES");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("the caller's signal kills the whole process group, grandchildren included, and keeps the abort's code", async () => {
    const ac = new AbortController();
    const started = Date.now();
    const dir = await mkdtemp(join(tmpdir(), "berth-run-"));
    try {
      const pidFile = join(dir, "pid");
      const run = runCommand("/bin/sh", ["-c", `sleep 300 & echo $$ > ${pidFile}; wait`], { signal: ac.signal, timeoutMs: 60_000 });
      let pgid = 0;
      for (let i = 0; i < 200 && !pgid; i++) {
        pgid = Number((await readFile(pidFile, "utf8").catch(() => "")).trim());
        if (!pgid) await new Promise((res) => setTimeout(res, 10));
      }
      assert.ok(pgid > 0, "the shell wrote its pid");
      assert.ok((await processGroupMembers(pgid)).length >= 2, "shell and sleep share the group");
      ac.abort(new BerthError(Code.DEADLINE_EXCEEDED, "the client's deadline passed"));
      const r = await run;
      assert.ok(Date.now() - started < 10_000);
      assert.equal(r.signal, "SIGKILL");
      assert.equal(r.timedOut, false);
      assert.ok(r.aborted instanceof BerthError);
      const e = unfinishedError("waiting", "/bin/sh", r);
      assert.equal(e?.code, Code.DEADLINE_EXCEEDED);
      assert.match(e!.message, /waiting: \/bin\/sh was killed with its process group: the client's deadline passed/);
      for (let i = 0; i < 100 && (await processGroupMembers(pgid)).length > 0; i++) await new Promise((res) => setTimeout(res, 20));
      assert.deepEqual(await processGroupMembers(pgid), [], "nothing of the group is left");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("an already aborted signal runs nothing", async () => {
    const ac = new AbortController();
    ac.abort(new Error("gone"));
    const dir = await mkdtemp(join(tmpdir(), "berth-run-"));
    try {
      const r = await runCommand("/bin/sh", ["-c", `touch ${join(dir, "ran")}`], { signal: ac.signal });
      assert.ok(r.aborted instanceof Error);
      assert.equal(existsSync(join(dir, "ran")), false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("output beyond the cap is dropped and said so", async () => {
    const r = await runCommand("/bin/sh", ["-c", "head -c 5000000 /dev/zero | tr '\\0' a"]);
    assert.equal(r.code, 0);
    assert.ok(r.stdout.length < 4_300_000, `kept ${r.stdout.length}`);
    assert.match(r.stdout, /more bytes dropped: output is limited to 4194304 bytes/);
  });

  test("every run has a timeout even when the caller names none", async () => {
    const { DEFAULT_TIMEOUT_MS } = await import("./run-command.ts");
    assert.ok(DEFAULT_TIMEOUT_MS > 0 && DEFAULT_TIMEOUT_MS <= 300_000);
    // timeoutMs 0 means the default, not "no limit".
    const r = await runCommand("/bin/true", [], { timeoutMs: 0 });
    assert.equal(r.code, 0);
  });

  test("output to a file comes back as stderr (both streams, in order) and the file is removed", async () => {
    const dir = await mkdtemp(join(tmpdir(), "berth-run-"));
    try {
      const outputFile = join(dir, "out");
      const r = await runCommand("/bin/sh", ["-c", "echo one; echo two >&2; exit 4"], { outputFile });
      assert.deepEqual(r, { code: 4, signal: null, stdout: "", stderr: "one\ntwo\n", timedOut: false });
      assert.equal(existsSync(outputFile), false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("a symlink at the output file is refused (ELOOP, an open error naming the file); its target is untouched and nothing runs", async () => {
    const dir = await mkdtemp(join(tmpdir(), "berth-run-"));
    try {
      const { symlink, writeFile } = await import("node:fs/promises");
      const target = join(dir, "precious");
      await writeFile(target, "keep\n");
      const outputFile = join(dir, "out");
      await symlink(target, outputFile);
      const r = await runCommand("/bin/sh", ["-c", `echo overwritten; touch ${join(dir, "ran")}`], { outputFile });
      const e = r.spawnError as NodeJS.ErrnoException | undefined;
      assert.equal(e?.code, "ELOOP");
      assert.match(e!.message, new RegExp(`open '${outputFile}'`));
      assert.equal(await readFile(target, "utf8"), "keep\n");
      assert.equal(existsSync(join(dir, "ran")), false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("a file without a slash is searched in the given environment's PATH", async () => {
    const r = await runCommand("sh", ["-c", "echo $PATH"], { env: { PATH: "/nonexistent-berth:/bin" } });
    assert.deepEqual({ code: r.code, stdout: r.stdout }, { code: 0, stdout: "/nonexistent-berth:/bin\n" });
    const missing = await runCommand("berth-no-such-command", [], { env: { PATH: "/bin:/usr/bin" } });
    assert.equal((missing.spawnError as NodeJS.ErrnoException | undefined)?.code, "ENOENT");
  });

  test("a script without #! runs with /bin/sh, as execvp does (by path and found in PATH)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "berth-run-"));
    try {
      const { writeFile } = await import("node:fs/promises");
      await writeFile(join(dir, "plain-script"), "echo ran \"$@\"\n", { mode: 0o755 });
      const r = await runCommand(join(dir, "plain-script"), ["a"]);
      assert.deepEqual({ code: r.code, stdout: r.stdout, err: r.spawnError?.message }, { code: 0, stdout: "ran a\n", err: undefined });
      const p = await runCommand("plain-script", ["b"], { env: { PATH: `/bin:${dir}` } });
      assert.deepEqual({ code: p.code, stdout: p.stdout, err: p.spawnError?.message }, { code: 0, stdout: "ran b\n", err: undefined });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("1 MiB of stdin arrives whole", async () => {
    const input = "x".repeat(1 << 20);
    const r = await runCommand("/bin/sh", ["-c", "wc -c"], { stdin: input });
    assert.equal(r.stdout.trim(), String(1 << 20));
    assert.equal(r.code, 0);
  });

  test("a NUL byte in an argument or the environment resolves with spawnError and runs nothing", async () => {
    const dir = await mkdtemp(join(tmpdir(), "berth-run-"));
    try {
      const r = await runCommand("/bin/sh", ["-c", `touch ${join(dir, "ran")}`, "a\0b"]);
      assert.equal((r.spawnError as NodeJS.ErrnoException | undefined)?.code, "ERR_INVALID_ARG_VALUE");
      const e = await runCommand("/bin/sh", ["-c", `touch ${join(dir, "ran")}`], { env: { PATH: "/bin", X: "a\0b" } });
      assert.equal((e.spawnError as NodeJS.ErrnoException | undefined)?.code, "ERR_INVALID_ARG_VALUE");
      assert.equal(existsSync(join(dir, "ran")), false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  if (mode === "berth-spawn") {
    test("the runs went through berth-spawn", () => {
      assert.equal(spawner!.started, 1, "one berth-spawn served every run");
      assert.ok(spawner!.pid! > 0);
    });
  }
});
