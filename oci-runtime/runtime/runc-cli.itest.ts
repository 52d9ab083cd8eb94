import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { BerthError, Code } from "../foundation/errdefs.ts";
import { withProcessArgs } from "../bundle-spec/process.ts";
import { detectCgroupLayout } from "../cgroups/mode.ts";
import { containerCgroupsPath } from "../cgroups/paths.ts";
import { makeEnv, type ItestEnv } from "../../conformance/lib/oci-itest-env.ts";

let env: ItestEnv;
before(async () => {
  env = await makeEnv();
  await env.create("ops", [withProcessArgs({ command: ["sleep", "100000"] })]);
  await env.runtime.start("ops");
});
after(async () => { await env.cleanup(); });

test("list shows the container with its pid and bundle", async () => {
  const all = await env.runtime.list();
  const me = all.find((s) => s.id === "ops");
  assert.ok(me);
  assert.equal(me.status, "running");
  assert.ok(me.pid > 0);
  assert.equal(me.bundle, env.bundle("ops"));
});

test("pause and resume", async () => {
  await env.runtime.pause("ops");
  assert.equal((await env.runtime.state("ops")).status, "paused");
  await env.runtime.resume("ops");
  assert.equal((await env.runtime.state("ops")).status, "running");
});

test("update changes the cgroup limits", async () => {
  await env.runtime.update("ops", { cpu: { shares: 333 } });
  const layout = await detectCgroupLayout();
  const cpu = layout.v1.find((h) => h.controllers.includes("cpu"));
  if (cpu) {
    const shares = await readFile(`${cpu.mountPoint}${containerCgroupsPath(env.cgroupParent, "ops")}/cpu.shares`, "utf8");
    assert.equal(shares.trim(), "333");
  } else {
    const weight = await readFile(`${layout.v2}${containerCgroupsPath(env.cgroupParent, "ops")}/cpu.weight`, "utf8");
    assert.ok(Number(weight) > 0);
  }
});

test("an unknown container is not found; delete of it is fine", async () => {
  await assert.rejects(env.runtime.state("nope"), (e) => e instanceof BerthError && e.code === Code.NOT_FOUND && /nope/.test(e.message));
  await assert.rejects(env.runtime.kill("nope", "TERM"), (e) => e instanceof BerthError && e.code === Code.NOT_FOUND);
  await env.runtime.delete("nope");
});

test("features lists mount options", async () => {
  const f = await env.runtime.features();
  assert.ok(f.mountOptions.includes("rbind"));
});

test("a runtime that hangs in create is killed with its process group at the limit; the error names the command and the limit", async () => {
  const { mkdtemp, rm, writeFile, readdir } = await import("node:fs/promises");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const { RuncCli } = await import("./runc-cli.ts");
  const dir = await mkdtemp(join(tmpdir(), "berth-hang-"));
  try {
    const bin = join(dir, "hang");
    await writeFile(bin, `#!/bin/sh\necho $$ > ${dir}/pgid\nsleep 600 & wait\n`, { mode: 0o755 });
    const rt = new RuncCli({ name: "hang", binary: bin, root: join(dir, "root"), timeoutMs: 500 });
    const start = Date.now();
    await assert.rejects(rt.create("c1", { bundle: dir, pidFile: join(dir, "pid") }), (e) => {
      assert.ok(e instanceof BerthError);
      assert.equal(e.code, Code.DEADLINE_EXCEEDED);
      assert.match(e.message, /runtime handler hang: create container c1: .*hang did not finish within its limit of 0\.5 s and was killed with its process group/);
      return true;
    });
    assert.ok(Date.now() - start < 5000);
    const pgid = Number((await readFile(join(dir, "pgid"), "utf8")).trim());
    const inGroup = async () => {
      const out: string[] = [];
      for (const d of (await readdir("/proc")).filter((x) => /^\d+$/.test(x))) {
        const st = await readFile(`/proc/${d}/stat`, "utf8").catch(() => "");
        if (Number(st.slice(st.lastIndexOf(")") + 2).split(" ")[2]) === pgid) out.push(d);
      }
      return out;
    };
    let left = await inGroup();
    for (let i = 0; i < 100 && left.length; i++) { await new Promise((r) => setTimeout(r, 20)); left = await inGroup(); }
    assert.deepEqual(left, [], "the stand-in and its sleep are gone");
    // The caller's signal ends a call before the limit, with the signal's reason.
    const ac = new AbortController();
    const slow = new RuncCli({ name: "hang", binary: bin, root: join(dir, "root"), timeoutMs: 60_000 });
    const call = slow.start("c1", { signal: ac.signal });
    setTimeout(() => ac.abort(new BerthError(Code.DEADLINE_EXCEEDED, "the client's deadline passed")), 200);
    await assert.rejects(call, (e) => e instanceof BerthError && e.code === Code.DEADLINE_EXCEEDED && /start container c1: .* killed with its process group: the client's deadline passed/.test(e.message));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("a runtime binary that cannot be run fails create at once (it used to hang with an output file)", async () => {
  const { RuncCli } = await import("./runc-cli.ts");
  const rt = new RuncCli({ name: "gone", binary: "/nonexistent/berth-runc", root: "/tmp/berth-gone-root" });
  const r = await Promise.race([
    rt.create("c1", { bundle: "/nonexistent", pidFile: "/nonexistent/pid" }).then(() => "resolved", (e: unknown) => e),
    new Promise((res) => setTimeout(() => res("hung"), 5000)),
  ]);
  assert.ok(r instanceof BerthError, String(r));
  assert.equal(r.code, Code.FAILED_PRECONDITION);
  assert.match(r.message, /runtime handler gone: create container c1: cannot run \/nonexistent\/berth-runc: .*ENOENT/);
  const { rm } = await import("node:fs/promises");
  await rm("/tmp/berth-gone-root-logs", { recursive: true, force: true });
});

test("with berth-start, start reads runc's exec fifo without running runc; what it cannot do falls back to `runc start`", async () => {
  const { mkdir, writeFile, access } = await import("node:fs/promises");
  const { join } = await import("node:path");
  const { RuncCli } = await import("./runc-cli.ts");
  // A runc that logs each command it runs (named runc: the exec fifo is runc's protocol).
  const binDir = join(env.dir, "logging-runc");
  await mkdir(binDir, { recursive: true });
  const calls = join(env.dir, "runc-calls.log");
  await writeFile(join(binDir, "runc"), `#!/bin/sh\necho "$*" >> ${calls}\nexec /usr/bin/runc "$@"\n`, { mode: 0o755 });
  const rt = new RuncCli({ name: "runc", binary: join(binDir, "runc"), root: env.runtime.root, startHelper: "/usr/local/libexec/berth/berth-start" });
  const commands = async () => (await readFile(calls, "utf8").catch(() => "")).split("\n").filter(Boolean).map((l) => l.split(" ").find((w) => ["start", "state"].includes(w)));

  const fifo = await env.create("fifo", [withProcessArgs({ command: ["sleep", "100000"] })]);
  assert.equal((await rt.state("fifo")).status, "created");
  await access(join(env.runtime.root, "fifo", "exec.fifo"));
  await rt.start("fifo", { initPid: fifo.pid });
  assert.equal((await rt.state("fifo")).status, "running", "the process was started");
  await assert.rejects(access(join(env.runtime.root, "fifo", "exec.fifo")), /ENOENT/, "the fifo is gone, as after runc start");
  assert.deepEqual(await commands(), ["state", "state"], "no runc start was run");
  // Started already: no fifo, so runc start answers in its own words.
  await assert.rejects(rt.start("fifo", { initPid: fifo.pid }), (e) => e instanceof BerthError && /cannot start an already running container/.test(e.message));
  assert.deepEqual(await commands(), ["state", "state", "start"]);

  // An init that died before the start: the fifo has no writer, nothing is read or removed, and runc reports it.
  const { pid } = await env.create("dead", [withProcessArgs({ command: ["sleep", "100000"] })]);
  process.kill(pid, "SIGKILL");
  const alive = () => readFile(`/proc/${pid}/stat`, "utf8").then((s) => !s.slice(s.lastIndexOf(")") + 2).startsWith("Z"), () => false);
  for (let i = 0; i < 250 && (await alive()); i++) await new Promise((r) => setTimeout(r, 20));
  await access(join(env.runtime.root, "dead", "exec.fifo"));
  await assert.rejects(rt.start("dead", { initPid: pid }), (e) => e instanceof BerthError && /start container dead: .*stopped/.test(e.message));
  assert.equal((await commands()).at(-1), "start", "runc start was asked");
  await access(join(env.runtime.root, "dead", "exec.fifo"));

  // Other runtimes never use it: the fifo is runc's.
  const other = new RuncCli({ name: "crun", binary: "/usr/bin/crun", root: env.runtime.root, startHelper: "/usr/local/libexec/berth/berth-start" });
  const o = await env.create("other", [withProcessArgs({ command: ["sleep", "100000"] })]);
  await assert.rejects(other.start("other", { initPid: o.pid }));
  await access(join(env.runtime.root, "other", "exec.fifo"));
});
