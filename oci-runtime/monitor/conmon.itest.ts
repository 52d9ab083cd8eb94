import { test, after, before, describe } from "node:test";
import assert from "node:assert/strict";
import { readFile, rename, writeFile } from "node:fs/promises";
import { BerthError, Code } from "../foundation/errdefs.ts";
import { withProcessArgs } from "../bundle-spec/process.ts";
import { makeEnv, eventually, type ItestEnv } from "../../conformance/lib/oci-itest-env.ts";
import { readExitFile, waitForExit } from "./exit-file.ts";
import { reopenLog, recover, resize, wasOomKilled } from "./conmon.ts";
import { withResources } from "../bundle-spec/resources.ts";
import { detectCgroupLayout } from "../cgroups/mode.ts";
import { cgroupPids } from "../cgroups/paths.ts";
import { prepareCgroup } from "./conmon-cgroup.ts";
import { defaultSpec } from "../bundle-spec/default-spec.ts";
import { isAlive } from "./pids.ts";
import { MONITORS } from "../../conformance/lib/monitors.ts";
import { useSpawner } from "../foundation/run-command.ts";
import { Spawner, type SpawnRequest } from "../foundation/spawner.ts";


const sh = (script: string) => withProcessArgs({ command: ["/bin/sh", "-c", script] });

function parseLog(text: string) {
  return text.split("\n").filter(Boolean).map((l) => {
    const m = /^(\S+) (stdout|stderr) ([PF]) (.*)$/.exec(l);
    assert.ok(m, `bad log line ${JSON.stringify(l.slice(0, 80))}`);
    return { ts: m[1]!, stream: m[2]!, tag: m[3]!, text: m[4]! };
  });
}

const SPAWN_BIN = "/usr/local/libexec/berth/berth-spawn";

// Every behaviour runs against each monitor berth supports (runtime.monitor): conmon and
// berth-monitor; and each monitor is started both ways createContainer knows: forked from this
// process (no spawner), and through berth-spawn as berthd starts it (useSpawner: the cgroup joins
// happen in berth-spawn's child, the sync line comes back as a LINE reply). The log rotation and
// OOM cases, about the monitor's own work rather than its start, run in the fork mode only.
for (const mode of ["fork", "berth-spawn"] as const) for (const { name, binary } of MONITORS) describe(`monitor ${name} (${mode})`, () => {
  let env: ItestEnv;
  let spawner: Spawner | undefined;
  const requests: SpawnRequest[] = [];
  before(async () => {
    env = await makeEnv();
    if (mode === "berth-spawn") {
      spawner = new Spawner(SPAWN_BIN);
      // Records what was asked of berth-spawn (the real one still runs every request).
      const real = spawner.run.bind(spawner);
      spawner.run = (req, done) => { requests.push(req); return real(req, done); };
      useSpawner(spawner);
    }
  });
  after(async () => {
    useSpawner(undefined);
    spawner?.close();
    await env.cleanup();
  });
  const create = (id: string, opts: Parameters<ItestEnv["create"]>[1], extra: Parameters<ItestEnv["create"]>[2] = {}) =>
    env.create(id, opts, { conmonBinary: binary, ...extra });

  test("create, start, state, exit code recorded by the monitor, delete", async () => {
    const { pid, conmonPid } = await create("life", [sh("read x < /dev/null; sleep 0.2; exit 3")]);
    assert.ok(pid > 0 && conmonPid > 0);
    assert.equal((await env.runtime.state("life")).status, "created");
    await env.runtime.start("life");
    const exit = await waitForExit(env.exitDir, "life");
    assert.equal(exit.exitCode, 3);
    assert.equal((await env.runtime.state("life")).status, "stopped");
    await env.runtime.delete("life");
    await assert.rejects(env.runtime.state("life"), (e) => e instanceof BerthError && e.code === Code.NOT_FOUND);
    await env.runtime.delete("life"); // idempotent
  });

  test("a killed container records 128+signal", async () => {
    await create("killed", [sh("sleep 1000")]);
    await env.runtime.start("killed");
    assert.equal((await env.runtime.state("killed")).status, "running");
    await env.runtime.kill("killed", "SIGKILL");
    assert.equal((await waitForExit(env.exitDir, "killed")).exitCode, 137);
    await assert.rejects(env.runtime.kill("killed", "SIGKILL"), (e) => e instanceof BerthError && (e.code === Code.FAILED_PRECONDITION || e.code === Code.NOT_FOUND));
  });

  test("a missing executable reaches the caller with the runtime's own message", async () => {
    await assert.rejects(create("nobin", [withProcessArgs({ command: ["no-such-binary"] })]), (e) => {
      assert.ok(e instanceof BerthError);
      assert.match(e.message, /exec: "no-such-binary": executable file not found in \$PATH/);
      return true;
    });
  });

  test("logs are in CRI format: partial lines, no trailing newline, long lines split with P", async () => {
    const long = 20000;
    await create("logs", [sh(`echo hello; echo oops >&2; head -c ${long} /dev/zero | tr '\\0' a; echo; printf tail`)]);
    await env.runtime.start("logs");
    await waitForExit(env.exitDir, "logs");
    const lines = parseLog(await readFile(env.logPath("logs"), "utf8"));
    for (const l of lines) assert.match(l.ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+(Z|[+-]\d\d:\d\d)$/);
    assert.deepEqual(lines[0], { ...lines[0], stream: "stdout", tag: "F", text: "hello" });
    assert.ok(lines.some((l) => l.stream === "stderr" && l.text === "oops" && l.tag === "F"));
    const out = lines.filter((l) => l.stream === "stdout").slice(1);
    // the long line: one or more P records followed by an F record, joined back to the original
    const fIdx = out.findIndex((l) => l.tag === "F");
    assert.ok(fIdx >= 1, "long line must be split into partial records");
    assert.ok(out.slice(0, fIdx).every((l) => l.tag === "P"));
    assert.equal(out.slice(0, fIdx + 1).map((l) => l.text).join(""), "a".repeat(long));
    assert.deepEqual({ tag: out.at(-1)!.tag, text: out.at(-1)!.text }, { tag: "P", text: "tail" });
  });

  if (mode === "fork") test("log reopen after rotation loses no line", async () => {
    await create("rotate", [sh("i=0; while [ $i -lt 100000 ]; do echo line$i; i=$((i+1)); done; sleep 1000")]);
    await env.runtime.start("rotate");
    const path = env.logPath("rotate");
    await eventually(async () => (await readFile(path, "utf8")).includes("line100\n"));
    await rename(path, `${path}.1`);
    await reopenLog(env.bundle("rotate"), "rotate");
    await eventually(async () => (await readFile(path, "utf8").catch(() => "")).includes("line99999\n"));
    const records = [...parseLog(await readFile(`${path}.1`, "utf8")), ...parseLog(await readFile(path, "utf8"))];
    // partial records (P) are joined with the following ones up to the full (F) record
    const all: string[] = [];
    let cur = "";
    for (const r of records) {
      cur += r.text;
      if (r.tag === "F") { all.push(cur); cur = ""; }
    }
    const nums = all.map((l) => Number(l.slice(4)));
    assert.equal(nums.length, 100000);
    nums.forEach((n, i) => assert.equal(n, i));
    assert.ok((await readFile(path, "utf8")).length > 0, "the new file received lines");
  });

  test("recover reports running with pids, then exited with the code", async () => {
    const { pid, conmonPid } = await create("rec", [sh("sleep 1000")]);
    await env.runtime.start("rec");
    const r = await recover({ id: "rec", bundle: env.bundle("rec"), exitDir: env.exitDir });
    assert.deepEqual(r, { status: "running", pid, conmonPid });
    await env.runtime.kill("rec", "TERM");
    await waitForExit(env.exitDir, "rec");
    const r2 = await recover({ id: "rec", bundle: env.bundle("rec"), exitDir: env.exitDir });
    assert.equal(r2.status, "exited");
    assert.equal(r2.status === "exited" && r2.exitCode, 128 + 15);
    await eventually(() => !isAlive(conmonPid));
    assert.equal(await readExitFile(env.exitDir, "nope"), undefined);
  });

  test("resize reaches the container's terminal through the ctl fifo", async () => {
    const spec = defaultSpec({ rootfs: env.rootfs });
    spec.process!.terminal = true;
    await create("tty", [sh("while true; do stty size; sleep 0.1; done")], { spec, terminal: true });
    await env.runtime.start("tty");
    await resize(env.bundle("tty"), "tty", { height: 42, width: 123 });
    await eventually(async () => (await readFile(env.logPath("tty"), "utf8")).includes("42 123"));
  });

  test(`${name} starts in its own cgroup (the cgroup option): joined before it runs, nothing else there`, async () => {
    const layout = await detectCgroupLayout();
    const path = `${env.cgroupParent}/monitor-cg`;
    const { conmonPid } = await create("incg", [sh("sleep 1000")], { cgroup: { layout, path } });
    assert.deepEqual(await cgroupPids(layout, path), [conmonPid]);
    if (mode === "berth-spawn") {
      // berth-spawn started the monitor itself (no /bin/sh wrapper), joining the cgroup and answering the sync line.
      const req = requests.find((r) => r.args.includes("incg"));
      assert.equal(req?.file, binary);
      assert.ok(req.onSyncLine, "the sync pipe is berth-spawn's fd 3");
      assert.ok(req.cgroupProcs?.length && req.cgroupProcs.every((f) => f.endsWith(`${path}/cgroup.procs`)), JSON.stringify(req.cgroupProcs));
    }
    const own = (await readFile(`/proc/${conmonPid}/cgroup`, "utf8")).split("\n").filter(Boolean);
    for (const l of own.filter((x) => /^\d+:(pids|memory|cpu,cpuacct|cpu|):/.test(x))) assert.match(l, new RegExp(`:${path}$`), l);
    await env.runtime.start("incg");
    await env.runtime.kill("incg", "KILL");
    assert.equal((await waitForExit(env.exitDir, "incg")).exitCode, 137);
    await eventually(() => !isAlive(conmonPid));
    assert.deepEqual(await cgroupPids(layout, path), []);
  });

  if (mode === "berth-spawn") test("the monitors were started through one berth-spawn, which is still serving", async () => {
    assert.equal(spawner!.started, 1);
    assert.ok(isAlive(spawner!.pid!));
    const monitors = requests.filter((r) => r.file === binary).map((r) => r.args[r.args.indexOf("--cid") + 1]);
    assert.deepEqual(monitors, ["life", "killed", "nobin", "logs", "rec", "tty", "incg"]);
    assert.ok(requests.some((r) => r.file === "/usr/bin/runc" && r.args.includes("start")), "runc's calls went through it too");
  });

  test(`${name} can be moved into its own cgroup`, async () => {
    const { conmonPid } = await create("moved", [sh("sleep 1000")]);
    const layout = await detectCgroupLayout();
    const path = `${env.cgroupParent}/conmon`;
    for (const procs of await prepareCgroup(layout, path)) await writeFile(procs, String(conmonPid));
    assert.deepEqual(await cgroupPids(layout, path), [conmonPid]);
    await env.runtime.start("moved");
    await env.runtime.kill("moved", "KILL");
    await waitForExit(env.exitDir, "moved");
  });

  if (mode === "fork") test("an OOM kill under a small memory limit is recorded", async () => {
    await create("oom", [sh("sleep 0.2; head -c 200m /dev/zero | tail"), withResources({ memoryLimitInBytes: 16 << 20 }, { cgroupV2: false })]);
    await env.runtime.start("oom");
    const exit = await waitForExit(env.exitDir, "oom");
    assert.notEqual(exit.exitCode, 0);
    assert.equal(await eventually(() => wasOomKilled(env.bundle("oom"))), true);
    const r = await recover({ id: "oom", bundle: env.bundle("oom"), exitDir: env.exitDir });
    assert.equal(r.status === "exited" && r.oomKilled, true);
  });
});

// How createContainer handles a monitor that misbehaves, on both start paths (fork and berth-spawn):
// a stand-in monitor script plays the monitor's part of the protocol (the sync pipe is fd 3).
for (const mode of ["fork", "berth-spawn"] as const) describe(`monitor start failures (${mode})`, () => {
  let env: ItestEnv;
  let spawner: Spawner | undefined;
  const leftovers: number[] = [];
  before(async () => {
    env = await makeEnv();
    if (mode === "berth-spawn") { spawner = new Spawner(SPAWN_BIN); useSpawner(spawner); }
  });
  after(async () => {
    useSpawner(undefined);
    spawner?.close();
    for (const p of leftovers) { try { process.kill(p, "SIGKILL"); } catch { /* gone */ } }
    await env.cleanup();
  });
  /** A stand-in monitor: writes its pid to <dir>/<name>.pid, then runs `body`. */
  const fake = async (name: string, body: string) => {
    const file = `${env.dir}/${name}`;
    await writeFile(file, `#!/bin/sh\necho $$ > ${file}.pid\n${body}\n`, { mode: 0o755 });
    return file;
  };
  const pidOf = async (file: string) => Number((await readFile(`${file}.pid`, "utf8")).trim());

  test("a monitor that never reports is killed after timeoutMs; the create fails DEADLINE_EXCEEDED naming the limit", async () => {
    const bin = await fake("silent", "exec sleep 300");
    await assert.rejects(env.create("silent", [sh("true")], { conmonBinary: bin, timeoutMs: 500 }), (e) => {
      assert.ok(e instanceof BerthError);
      assert.equal(e.code, Code.DEADLINE_EXCEEDED);
      assert.match(e.message, /did not report container silent within 500 ms/);
      return true;
    });
    const pid = await pidOf(bin);
    leftovers.push(pid);
    await eventually(() => !isAlive(pid), 10_000);
  });

  test("a monitor that exits without a sync line: the create fails with the last line of its stderr", async () => {
    const bin = await fake("quits", "echo 'first line' >&2; echo 'monitor: cannot do the thing' >&2; exit 1");
    await assert.rejects(env.create("quits", [sh("true")], { conmonBinary: bin }), (e) => {
      assert.ok(e instanceof BerthError);
      assert.match(e.message, /create container quits: monitor: cannot do the thing/);
      return true;
    });
  });

  test("a monitor that reports a failure on its sync pipe: the create fails with its message", async () => {
    const bin = await fake("reports", `echo '{"data": -1, "message": "runc create failed: boom"}' >&3; exit 1`);
    await assert.rejects(env.create("reports", [sh("true")], { conmonBinary: bin }), (e) => {
      assert.ok(e instanceof BerthError);
      assert.match(e.message, /create container reports: runc create failed: boom/);
      return true;
    });
  });

  test("a monitor binary that does not exist: the create fails naming it", async () => {
    await assert.rejects(env.create("nomon", [sh("true")], { conmonBinary: `${env.dir}/no-such-monitor` }), (e) => {
      assert.ok(e instanceof BerthError);
      assert.match(e.message, /no-such-monitor/);
      assert.match(e.message, /ENOENT/);
      return true;
    });
  });
});
