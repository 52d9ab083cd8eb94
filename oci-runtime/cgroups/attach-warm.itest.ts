// The warm-up against this host's real cgroups (root): a process is moved into the cgroup it is in,
// so it stays where it is, and a process moved elsewhere meanwhile is not moved back.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { CgroupAttachWarmer, ownProcsFile } from "./attach-warm.ts";
import { detectCgroupLayout } from "./mode.ts";
import { killAndWait, removeCgroupDirs } from "../../conformance/lib/procs.ts";

const name = `berth-test-warm-${randomBytes(4).toString("hex")}`;
let child: ReturnType<typeof spawn>;
let dirs: string[] = [];

const cgroupOf = async (pid: number) => readFile(`/proc/${pid}/cgroup`, "utf8");

before(async () => {
  const layout = await detectCgroupLayout();
  child = spawn("sleep", ["600"], { stdio: "ignore" });
  // The hierarchy the warm-up writes in, and a cgroup A and B in it.
  const file = ownProcsFile(layout, await cgroupOf(child.pid!));
  assert.ok(file, "the test process has a cgroup the warm-up can name");
  const root = layout.v2 ?? layout.v1.find((h) => !h.controllers.includes("cpuset"))!.mountPoint; // where ownProcsFile looks first
  dirs = [join(root, `${name}-a`), join(root, `${name}-b`)];
  for (const d of dirs) await mkdir(d);
  await writeFile(join(dirs[0]!, "cgroup.procs"), String(child.pid));
});

after(async () => {
  await killAndWait(child);
  await removeCgroupDirs(dirs);
});

it("moves the process into the cgroup it is in: the kernel takes the write, nothing changes", async () => {
  const before = await cgroupOf(child.pid!);
  assert.match(before, new RegExp(`${name}-a`));
  const w = new CgroupAttachWarmer({ pid: child.pid! });
  for (let i = 0; i < 3; i++) assert.equal(await w.warm(), true);
  assert.equal(await cgroupOf(child.pid!), before);
  assert.equal(w.off, false);
});

it("reads the cgroup afresh: a process moved meanwhile stays in its new cgroup", async () => {
  const w = new CgroupAttachWarmer({ pid: child.pid! });
  assert.equal(await w.warm(), true);
  await writeFile(join(dirs[1]!, "cgroup.procs"), String(child.pid));
  assert.equal(await w.warm(), true);
  assert.match(await cgroupOf(child.pid!), new RegExp(`${name}-b`));
  assert.doesNotMatch(await cgroupOf(child.pid!), new RegExp(`${name}-a`));
});

it("a process that is gone fails the write, and three failures turn the warm-up off", async () => {
  const gone = spawn("true");
  await new Promise((r) => gone.on("exit", r));
  const told: Error[] = [];
  const w = new CgroupAttachWarmer({ pid: gone.pid!, onGiveUp: (e) => told.push(e) });
  for (let i = 0; i < 3; i++) assert.equal(await w.warm(), false);
  assert.equal(w.off, true);
  assert.equal(told.length, 1);
});

it("a write the kernel refuses (kthreadd, pid 2, cannot be moved) fails, and three turn the warm-up off", async () => {
  const told: Error[] = [];
  const w = new CgroupAttachWarmer({ pid: 2, onGiveUp: (e) => told.push(e) });
  for (let i = 0; i < 3; i++) assert.equal(await w.warm(), false);
  assert.equal(w.off, true);
  assert.match(told[0]!.message, /EINVAL|invalid argument/i);
});
