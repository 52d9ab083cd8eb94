// Real cgroup v1 on this host: a child that burns CPU and allocates memory
// inside a fresh cgroup moves the numbers. Runs as root.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { after, before, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { CgroupStatsReader } from "./cgroup-stats-reader.ts";
import type { CgroupStats } from "./types.ts";
import { killAndWait, removeCgroupDirs } from "../../../conformance/lib/procs.ts";

const reader = new CgroupStatsReader();
const name = `/berth-test-${randomBytes(4).toString("hex")}`;
let controllers: string[] = [];
const child = { proc: undefined as ReturnType<typeof spawn> | undefined };

before(async () => {
  const dirs = await reader.dirs(name);
  if (dirs.mode === "v2") {
    controllers = [dirs.unified!];
  } else {
    controllers = [dirs.cpu, dirs.cpuacct, dirs.memory, dirs.pids].filter((d) => d !== undefined);
    controllers = [...new Set(controllers)];
  }
  for (const d of controllers) await mkdir(d);
});

after(async () => {
  await killAndWait(child.proc);
  await removeCgroupDirs(controllers);
});

const WORKER = `
process.stdin.once("data", () => {
  const keep = [];
  for (let i = 0; i < 64; i++) keep.push(Buffer.alloc(1 << 20, i));
  globalThis.keep = keep;
  process.stdout.write("allocated\\n");
  for (;;) Math.sqrt(Math.random());
});
`;

it("cpu and memory of a busy process in a real cgroup move", async () => {
  const before0 = await reader.read(name);
  assert.equal(before0.pids?.count, 0n);
  const p = spawn(process.execPath, ["-e", WORKER], { stdio: ["pipe", "pipe", "inherit"] });
  child.proc = p;
  await new Promise((r) => p.once("spawn", r));
  for (const d of controllers) await writeFile(`${d}/cgroup.procs`, String(p.pid));
  const allocated = new Promise((r) => p.stdout!.once("data", r));
  p.stdin!.write("go\n");
  await allocated;

  let s: CgroupStats = await reader.read(name);
  for (let i = 0; i < 100 && (s.cpu?.usageCoreNanoSeconds ?? 0n) < 50_000_000n; i++) {
    await sleep(50);
    s = await reader.read(name);
  }
  assert.ok(s.cpu!.usageCoreNanoSeconds > before0.cpu!.usageCoreNanoSeconds, "cpu usage grows");
  assert.ok(s.cpu!.usageCoreNanoSeconds >= 50_000_000n, `cpu usage ${s.cpu!.usageCoreNanoSeconds} reaches 50ms`);
  assert.ok(s.cpu!.timestamp > before0.cpu!.timestamp);
  assert.ok(s.memory!.usageBytes >= 64n << 20n, `memory usage ${s.memory!.usageBytes} includes the 64 MiB`);
  assert.ok(s.memory!.workingSetBytes >= 60n << 20n, `working set ${s.memory!.workingSetBytes}`);
  assert.ok(s.memory!.rssBytes >= 60n << 20n, `rss ${s.memory!.rssBytes}`);
  assert.ok(s.memory!.pageFaults > before0.memory!.pageFaults);
  assert.ok(s.pids!.count >= 1n);
});
