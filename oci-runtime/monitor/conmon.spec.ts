import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { conmonArgs, monitorBinary, parseSyncMessage } from "./conmon.ts";
import { MONITOR_NAMES } from "./pids.ts";
import { readExitFile, waitForExit } from "./exit-file.ts";

const runtime = { binary: "/usr/bin/runc", globalArgs: () => ["--root", "/run/r"] };
const base = { runtime, id: "c1", bundle: "/b", logPath: "/l/0.log", exitDir: "/e", socketDir: "/s" };

test("conmon args: api v1, pid files in the bundle, k8s-file log, runtime args with json log", () => {
  const a = conmonArgs(base);
  const val = (flag: string) => a[a.indexOf(flag) + 1];
  assert.equal(val("--api-version"), "1");
  assert.equal(val("--container-pidfile"), "/b/container.pid");
  assert.equal(val("--conmon-pidfile"), "/b/conmon.pid");
  assert.equal(val("--log-path"), "k8s-file:/l/0.log");
  assert.equal(val("--exit-dir"), "/e");
  assert.equal(val("--persist-dir"), "/b");
  const rargs = a.flatMap((x, i) => (x === "--runtime-arg" ? [a[i + 1]] : []));
  assert.deepEqual(rargs, ["--root", "/run/r", "--log-format=json", "--log=/b/runtime.log"]);
  assert.ok(!a.includes("--stdin") && !a.includes("--terminal") && !a.includes("--sync") && !a.includes("--syslog"));
});

test("stdin, stdin_once, tty and log size map to conmon flags", () => {
  const a = conmonArgs({ ...base, stdin: true, terminal: true, logSizeMax: 1024 });
  assert.ok(a.includes("--stdin") && a.includes("--leave-stdin-open") && a.includes("--terminal"));
  assert.equal(a[a.indexOf("--log-size-max") + 1], "1024");
  assert.ok(!conmonArgs({ ...base, stdin: true, stdinOnce: true }).includes("--leave-stdin-open"));
});

test("sync messages: pid, failure with message, and unescaped messages", () => {
  assert.deepEqual(parseSyncMessage(`{"data": 123}`), { data: 123, message: undefined });
  assert.deepEqual(parseSyncMessage(`{"data": -1, "message": "exec: \\"x\\": not found"}`), { data: -1, message: `exec: "x": not found` });
  assert.equal(parseSyncMessage(`{"data": -1, "message": "bad "quote" here"}`)!.data, -1);
  assert.equal(parseSyncMessage("garbage"), undefined);
});

test("exit files give the code and the file time; waitForExit notices a new one", async () => {
  const dir = await mkdtemp(join(tmpdir(), "berth-exit-"));
  try {
    assert.equal(await readExitFile(dir, "x"), undefined);
    const waiting = waitForExit(dir, "x", { pollMs: 50 });
    await writeFile(join(dir, "x"), "137");
    await utimes(join(dir, "x"), new Date(1_700_000_000_000), new Date(1_700_000_000_000));
    const info = await waiting;
    assert.equal(info.exitCode, 137);
    const again = await readExitFile(dir, "x");
    assert.equal(again!.finishedAt.getTime(), 1_700_000_000_000);
    await writeFile(join(dir, "y"), "");
    assert.equal(await readExitFile(dir, "y"), undefined);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("waitForExit rejects when aborted", async () => {
  const dir = await mkdtemp(join(tmpdir(), "berth-exit-"));
  try {
    const ac = new AbortController();
    const p = waitForExit(dir, "never", { signal: ac.signal });
    ac.abort(new Error("stop"));
    await assert.rejects(p, /stop/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("runtime.monitor picks the binary: berth-monitor next to the io helper, or the configured conmon; both count as monitors", () => {
  assert.equal(monitorBinary({ monitor: "berth", conmon: "/opt/conmon", io_helper: "/usr/local/libexec/berth/berth-io" }), "/usr/local/libexec/berth/berth-monitor");
  assert.equal(monitorBinary({ monitor: "conmon", conmon: "/opt/conmon", io_helper: "/usr/local/libexec/berth/berth-io" }), "/opt/conmon");
  assert.deepEqual([...MONITOR_NAMES].sort(), ["berth-monitor", "conmon"]);
});
