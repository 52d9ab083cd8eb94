import { test } from "node:test";
import assert from "node:assert/strict";
import { cgroupUnder, parseSmapsRollup, withDescendants } from "./host.ts";

test("smaps_rollup gives RSS, PSS and anonymous PSS in bytes", () => {
  const text = [
    "55d0c8a3e000-7ffd6b1f9000 ---p 00000000 00:00 0                          [rollup]",
    "Rss:               98412 kB",
    "Pss:               50816 kB",
    "Pss_Dirty:         46000 kB",
    "Pss_Anon:          46320 kB",
    "Pss_File:           4496 kB",
  ].join("\n");
  assert.deepEqual(parseSmapsRollup(text), { rss: 98412 * 1024, pss: 50816 * 1024, pssAnon: 46320 * 1024 });
  assert.deepEqual(parseSmapsRollup(""), { rss: 0, pss: 0, pssAnon: 0 });
});

test("cgroupUnder matches the cgroup and its children in v1 and v2 lines, not a prefix of another name", () => {
  const v1 = "12:memory:/berth-npmbench-berth-7/pod1/ctr\n11:cpu,cpuacct:/berth-npmbench-berth-7/pod1/ctr\n0::/\n";
  assert.equal(cgroupUnder(v1, "berth-npmbench-berth-7"), true);
  assert.equal(cgroupUnder("0::/berth-npmbench-berth-7\n", "berth-npmbench-berth-7"), true);
  assert.equal(cgroupUnder("0::/berth-npmbench-berth-77/x\n", "berth-npmbench-berth-7"), false);
  assert.equal(cgroupUnder("0::/system.slice/berth-npmbench-berth-7/x\n", "berth-npmbench-berth-7"), false);
});

test("withDescendants finds children and grandchildren, and a process without any alone", async () => {
  const { spawn } = await import("node:child_process");
  // A shell (child) that starts a sleep (grandchild) and waits for it.
  const child = spawn("/bin/sh", ["-c", "sleep 30 & echo $!; wait"], { stdio: ["ignore", "pipe", "ignore"] });
  try {
    const grandchild = await new Promise<number>((resolve, reject) => {
      child.stdout!.setEncoding("utf8").once("data", (d: string) => resolve(Number(d.trim())));
      child.once("error", reject);
    });
    const found = withDescendants([process.pid]);
    assert.equal(found[0], process.pid);
    assert.ok(found.includes(child.pid!), `child ${child.pid} in ${found.join(",")}`);
    assert.ok(found.includes(grandchild), `grandchild ${grandchild} in ${found.join(",")}`);
    assert.deepEqual(withDescendants([grandchild]), [grandchild]);
    assert.deepEqual(withDescendants([2 ** 22 + 1]), [2 ** 22 + 1], "a pid that does not exist is kept, with nothing under it");
    process.kill(grandchild, "SIGKILL");
  } finally {
    child.kill("SIGKILL");
  }
});
