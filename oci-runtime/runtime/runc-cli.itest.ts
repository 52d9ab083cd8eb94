import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { BerthError, Code } from "../foundation/errdefs.ts";
import { withProcessArgs } from "../spec/process.ts";
import { detectCgroupLayout } from "../cgroups/mode.ts";
import { containerCgroupsPath } from "../cgroups/paths.ts";
import { makeEnv, type ItestEnv } from "../foundation/itest-env.ts";

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
