import { test, after, afterEach, before, describe } from "node:test";
import assert from "node:assert/strict";
import { BerthError, Code } from "../foundation/errdefs.ts";
import { withProcessArgs, withEnv } from "../bundle-spec/process.ts";
import { withUser } from "../bundle-spec/user.ts";
import { detectCgroupLayout } from "../cgroups/mode.ts";
import { cgroupPids, containerCgroupsPath } from "../cgroups/paths.ts";
import { makeEnv, eventually, type ItestEnv } from "../../conformance/lib/oci-itest-env.ts";
import { execSync, forgetBundleProcess } from "./exec-sync.ts";
import { RuncCli } from "./runc-cli.ts";
import { Spawner } from "../foundation/spawner.ts";
import { useSpawner } from "../foundation/run-command.ts";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";

let env: ItestEnv;
let initPid: number;
before(async () => {
  env = await makeEnv({
    "etc/passwd": "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\n",
    "etc/group": "root:x:0:\nappgrp:x:1001:\nextra:x:2000:app\nother:x:2001:root\n",
  });
  const opts = [withProcessArgs({ command: ["sleep", "100000"] }), withEnv({ env: [{ key: "FOO", value: "bar" }] })];
  ({ pid: initPid } = await env.create("exec", opts));
  await env.runtime.start("exec");
  await env.create("user", [withProcessArgs({ command: ["sleep", "100000"] }), withUser(env.rootfs, { imageUser: "app", supplementalGroups: [3000] })]);
  await env.runtime.start("user");
});
after(async () => { await env.cleanup(); });

test("exec returns stdout, stderr and the exit code, with the container's env", async () => {
  const r = await execSync(env.runtime, "exec", ["sh", "-c", "echo out $FOO; echo err >&2; exit 7"], { timeoutMs: 30_000 });
  assert.equal(r.stdout.toString(), "out bar\n");
  assert.equal(r.stderr.toString(), "err\n");
  assert.equal(r.exitCode, 7);
});

test("exec overrides env, cwd and user", async () => {
  const r = await execSync(env.runtime, "exec", ["sh", "-c", "echo $FOO $(pwd) $(id -u):$(id -g)"], { env: ["FOO=baz"], cwd: "/tmp", user: { uid: 1000, gid: 1001 } });
  assert.equal(r.stdout.toString(), "baz /tmp 1000:1001\n");
});

test("a missing executable is an error with the runtime's message", async () => {
  await assert.rejects(execSync(env.runtime, "exec", ["no-such-cmd"]), (e) => {
    assert.ok(e instanceof BerthError);
    assert.match(e.message, /no-such-cmd/);
    assert.match(e.message, /not found/);
    return true;
  });
});

test("a timeout kills the exec'd process and answers deadline exceeded", async () => {
  await assert.rejects(execSync(env.runtime, "exec", ["sleep", "1000"], { timeoutMs: 300 }), (e) => e instanceof BerthError && e.code === Code.DEADLINE_EXCEEDED);
  const layout = await detectCgroupLayout();
  const pids = await eventually(async () => {
    const p = await cgroupPids(layout, containerCgroupsPath(env.cgroupParent, "exec"));
    return p.length === 1 ? p : undefined;
  });
  assert.deepEqual(pids, [initPid]);
});

test("user, group and supplemental groups come from the rootfs's /etc/passwd and /etc/group", async () => {
  const r = await execSync(env.runtime, "user", ["sh", "-c", "id -u; id -g; id -G; echo $HOME"]);
  assert.equal(r.exitCode, 0);
  const [uid, gid, groups, home] = r.stdout.toString().trim().split("\n");
  assert.equal(uid, "1000");
  assert.equal(gid, "1001");
  assert.deepEqual(groups!.split(" ").map(Number).sort((a, b) => a - b), [1001, 2000, 3000]);
  assert.equal(home, "/home/app");
});

const REAPER = "/usr/local/libexec/berth/berth-exec";
const SPAWN_BIN = "/usr/local/libexec/berth/berth-spawn";

/**
 * A runtime that has read the process spec and takes `ms` before starting the process (as a slow
 * runc would): the exec'd process starts after the call gave up.
 */
async function slowRuntime(ms: number): Promise<RuncCli> {
  const bin = join(env.dir, `slow-runc-${ms}`);
  await writeFile(bin, [
    "#!/bin/sh",
    'p=""; next=0; for a in "$@"; do [ $next = 1 ] && p="$a"; next=0; [ "$a" = "--process" ] && next=1; done',
    'cp "$p" "$p.read"',
    `sleep ${ms / 1000}`,
    'mv "$p.read" "$p"',
    'exec /usr/bin/runc "$@"',
  ].join("\n") + "\n", { mode: 0o755 });
  return new RuncCli({ name: "runc", binary: bin, root: env.runtime.root });
}

/** The container's processes, once the slow runtime has certainly had the time to start the exec. */
async function execProcessesAfter(ms: number): Promise<number[]> {
  await new Promise((r) => setTimeout(r, ms));
  return cgroupPids(await detectCgroupLayout(), containerCgroupsPath(env.cgroupParent, "exec"));
}

/** berth-exec started by berthd's process starter (berth-spawn), as berthd does, or forked here. */
for (const mode of ["fork", "berth-spawn"] as const) {
  describe(`ExecSync with berth-exec, ${mode === "fork" ? "forked by this process" : "started by berth-spawn"}`, () => {
    let sp: Spawner | undefined;
    before(() => { if (mode === "berth-spawn") { sp = new Spawner(SPAWN_BIN); useSpawner(sp); } });
    after(() => { useSpawner(undefined); sp?.close(); });
    afterEach(() => { if (mode === "berth-spawn") assert.ok(sp!.pid !== undefined && sp!.started === 1, "the calls went through berth-spawn"); });

  test(`with berth-exec (${mode}), the exec'd process's exit ends the call even when a background child holds the output`, async () => {
    const start = Date.now();
    const r = await execSync(env.runtime, "exec", ["sh", "-c", "sleep 4321 & echo bg; exit 4"], { reaper: REAPER, drainTimeoutMs: 200, timeoutMs: 30_000 });
    assert.deepEqual([r.stdout.toString(), r.exitCode], ["bg\n", 4]);
    assert.ok(Date.now() - start < 5000, `took ${Date.now() - start} ms`);
    const ps = await execSync(env.runtime, "exec", ["ps", "-o", "args"], { reaper: REAPER });
    assert.match(ps.stdout.toString(), /sleep 4321/, "the background child keeps running");
    // Stop it again ("432[1]" does not match this shell's own command line).
    await execSync(env.runtime, "exec", ["sh", "-c", "for p in /proc/[0-9]*; do grep -q '432[1]' $p/cmdline 2>/dev/null && kill ${p#/proc/}; done; true"], { reaper: REAPER });
    const left = await execSync(env.runtime, "exec", ["ps", "-o", "args"], { reaper: REAPER });
    assert.doesNotMatch(left.stdout.toString(), /sleep 4321/);
  });

  test(`with berth-exec (${mode}), a runtime failure still carries the runtime's message`, async () => {
    await assert.rejects(execSync(env.runtime, "exec", ["no-such-cmd"], { reaper: REAPER }), (e) => e instanceof BerthError && /no-such-cmd/.test(e.message) && /not found/.test(e.message));
  });

  test(`with berth-exec (${mode}), a timeout before the runtime wrote the pid file still kills the process the runtime starts later`, async () => {
    const slow = await slowRuntime(3000);
    const started = Date.now();
    await assert.rejects(execSync(slow, "exec", ["sleep", "4242"], { reaper: REAPER, timeoutMs: 200 }), (e) => e instanceof BerthError && e.code === Code.DEADLINE_EXCEEDED);
    assert.ok(Date.now() - started < 10_000, `answered in ${Date.now() - started} ms`);
    assert.deepEqual(await execProcessesAfter(4500), [initPid], "no sleep 4242 left in the container");
  });

  test(`with berth-exec (${mode}), an aborted call kills the process, also when the runtime had not started it yet`, async () => {
    const slow = await slowRuntime(3000);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    await assert.rejects(execSync(slow, "exec", ["sleep", "4243"], { reaper: REAPER, timeoutMs: 30_000, signal: ac.signal }), (e) => e instanceof BerthError && e.code === Code.CANCELLED);
    assert.deepEqual(await execProcessesAfter(4500), [initPid], "no sleep 4243 left in the container");
    const ac2 = new AbortController();
    setTimeout(() => ac2.abort(), 1000);
    await assert.rejects(execSync(env.runtime, "exec", ["sleep", "4244"], { reaper: REAPER, timeoutMs: 30_000, signal: ac2.signal }), (e) => e instanceof BerthError && e.code === Code.CANCELLED);
    assert.deepEqual(await execProcessesAfter(500), [initPid], "no sleep 4244 left in the container");
  });

    test(`with berth-exec (${mode}), output up to maxOutputBytes arrives whole, and no more`, async () => {
      const big = await execSync(env.runtime, "exec", ["sh", "-c", "head -c 6000000 /dev/zero | tr '\\0' a; head -c 5000000 /dev/zero | tr '\\0' b >&2"], { reaper: REAPER, timeoutMs: 30_000 });
      assert.deepEqual([big.stdout.length, big.stderr.length, big.exitCode], [6_000_000, 5_000_000, 0]);
      assert.ok(big.stdout.every((c) => c === 0x61) && big.stderr.every((c) => c === 0x62));
      const cut = await execSync(env.runtime, "exec", ["sh", "-c", "head -c 5000 /dev/zero | tr '\\0' a; echo done >&2"], { reaper: REAPER, timeoutMs: 30_000, maxOutputBytes: 1000 });
      assert.deepEqual([cut.stdout.toString(), cut.stderr.toString(), cut.exitCode], ["a".repeat(1000), "done\n", 0]);
    });
  });
}

test("a bundle's process spec is read once and kept until its container is forgotten: a new container in the same bundle gets its own", async () => {
  const mk = (value: string) => [withProcessArgs({ command: ["sleep", "100000"] }), withEnv({ env: [{ key: "WHO", value }] })];
  const run = () => execSync(env.runtime, "again", ["sh", "-c", "echo $WHO"], { bundle: env.bundle("again"), timeoutMs: 30_000 });
  await env.create("again", mk("first"));
  await env.runtime.start("again");
  assert.equal((await run()).stdout.toString(), "first\n");
  // Kept: a config.json changed behind berth's back (it never changes in a container's life) is not read again.
  const cfgPath = join(env.bundle("again"), "config.json");
  const { readFile } = await import("node:fs/promises");
  await writeFile(cfgPath, (await readFile(cfgPath, "utf8")).replace("WHO=first", "WHO=changed"));
  assert.equal((await run()).stdout.toString(), "first\n");
  // The container goes (teardown forgets its bundle); another one in the same bundle is read anew.
  await env.runtime.kill("again", "KILL", true);
  await env.runtime.delete("again", { force: true });
  forgetBundleProcess(env.bundle("again"));
  await env.create("again", mk("second"));
  await env.runtime.start("again");
  assert.equal((await run()).stdout.toString(), "second\n");
});
