import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpuMs, cpuMsWithChildren, parseMachineCpu, parseStatCpuMs, untilQuiet } from "./cpu.ts";

test("parseStatCpuMs adds utime and stime in 10 ms ticks, past a comm with spaces and parentheses", () => {
  const stat = "5742 (a) b (c) R 5736 5736 6382 0 -1 4194304 102 0 0 0 37 5 0 0 20 0 1 0 921617 3133440 416";
  assert.equal(parseStatCpuMs(stat), 420);
  assert.throws(() => parseStatCpuMs("12 (x) R 1"), /unexpected \/proc\/PID\/stat/);
});

test("cpuMs of this process grows while it spins", () => {
  const before = cpuMs(process.pid);
  const used0 = process.cpuUsage();
  const wallLimit = Date.now() + 20_000; // a busy machine may give this process little CPU
  while (Date.now() < wallLimit) {
    const u = process.cpuUsage(used0);
    if (u.user + u.system >= 150_000) break;
  }
  const u = process.cpuUsage(used0);
  assert.ok(u.user + u.system >= 150_000, "did not get 150 ms of CPU within 20 s");
  assert.ok(cpuMs(process.pid) - before >= 130, `cpuMs grew by ${cpuMs(process.pid) - before} ms`);
});

test("cpuMsWithChildren counts a child's CPU once it has been reaped", () => {
  const before = cpuMsWithChildren([process.pid]);
  // A child that spins for about 300 ms of CPU, reaped by execFileSync.
  execFileSync(process.execPath, ["-e", "const t = process.cpuUsage(); while (process.cpuUsage(t).user < 300000);"]);
  const grew = cpuMsWithChildren([process.pid]) - before;
  assert.ok(grew >= 250, `grew by ${grew} ms`);
});

test("parseMachineCpu: busy is everything but idle and iowait, over user to steal", () => {
  const stat = "cpu  100 5 50 1000 20 3 2 1 7 0\ncpu0 50 2 25 500 10 1 1 0 0 0\n";
  assert.deepEqual(parseMachineCpu(stat), { busy: 161, total: 1181 });
  assert.throws(() => parseMachineCpu("intr 1 2 3\n"), /unexpected \/proc\/stat/);
  assert.throws(() => parseMachineCpu("cpu 1 x 3 4 5\n"), /unexpected \/proc\/stat/);
});

test("untilQuiet waits its minimum, and no longer than its maximum while the machine is busy", async () => {
  const quiet = await untilQuiet({ minMs: 100, maxMs: 5_000, busyBelow: 1.01 }); // any share is below 101%
  assert.ok(quiet.quiet && quiet.ms >= 100 && quiet.ms < 2_000, JSON.stringify(quiet));
  const busy = await untilQuiet({ minMs: 0, maxMs: 600, busyBelow: 0 }); // no share is below 0
  assert.ok(!busy.quiet && busy.ms >= 600 && busy.ms < 3_000, JSON.stringify(busy));
});
