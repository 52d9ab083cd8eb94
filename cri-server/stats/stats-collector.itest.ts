// StatsCollector against the real host: a busy process in a fresh cgroup
// (with its own netns and a writable dir) yields CRI-shaped container and
// pod stats that move. Runs as root.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, rmdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { CgroupStatsReader } from "../../oci-runtime/cgroups/stats/cgroup-stats-reader.ts";
import { createLogger } from "../../oci-runtime/foundation/log.ts";
import { StatsCollector } from "./stats-collector.ts";
import { killAndWait } from "../../conformance/lib/procs.ts";

const reader = new CgroupStatsReader();
const pod = `/berth-test-${randomBytes(4).toString("hex")}`;
const ctr = `${pod}/ctr`;
let dirs: string[] = [];
let work = "";
let busy: ReturnType<typeof spawn> | undefined;

before(async () => {
  work = await mkdtemp(join(tmpdir(), "berth-stats-"));
  for (const path of [pod, ctr]) {
    const d = await reader.dirs(path);
    const list = d.mode === "v2" ? [d.unified!] : [d.cpu, d.cpuacct, d.memory, d.pids].filter((x) => x !== undefined);
    for (const dir of new Set(list)) { await mkdir(dir); dirs.push(dir); }
  }
});

after(async () => {
  await killAndWait(busy);
  for (const d of dirs.reverse()) {
    for (let i = 0; i < 50; i++) {
      try { await rmdir(d); break; } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") break;
        await sleep(100);
      }
    }
  }
  await rm(work, { recursive: true, force: true });
});

it("container and pod stats of a busy process in its own cgroup and netns", async () => {
  await mkdir(join(work, "upper/etc"), { recursive: true });
  await writeFile(join(work, "upper/etc/data"), Buffer.alloc(64 * 1024, 7));
  // a CPU-burning shell in a new netns; cgroup first, then work (children inherit it)
  busy = spawn("unshare", ["--net", "/usr/bin/busybox", "sh", "-c", "read x; y=$(/usr/bin/busybox head -c 4000000 /dev/zero | /usr/bin/busybox tr '\\0' a); while :; do :; done"], { stdio: ["pipe", "ignore", "inherit"] });
  await new Promise((r) => busy!.once("spawn", r));
  for (const d of dirs.filter((x) => x.endsWith("/ctr"))) await writeFile(join(d, "cgroup.procs"), String(busy.pid));
  busy.stdin!.write("go\n");

  const collector = new StatsCollector({ cgroups: reader, cacheTtlMs: 0, diskCacheTtlMs: 0, log: createLogger({}, () => {}) });
  const target = { id: "ctr", cgroupsPath: ctr, writableLayerDir: join(work, "upper"), attributes: { id: "ctr" } };
  const podTarget = { id: "pod", cgroupsPath: pod, netnsPid: busy.pid!, attributes: { id: "pod" }, containers: [target] };

  const first = await collector.podSandboxStats(podTarget);
  let last = first;
  for (let i = 0; i < 100; i++) {
    await sleep(50);
    last = await collector.podSandboxStats(podTarget);
    const lc = last.linux.containers[0];
    if ((lc?.cpu?.usageNanoCores?.value ?? 0n) > 0n && (lc?.memory?.workingSetBytes.value ?? 0n) >= 4_000_000n) break;
  }
  const c = last.linux.containers[0]!;
  assert.ok(c.cpu!.usageCoreNanoSeconds.value > first.linux.containers[0]!.cpu!.usageCoreNanoSeconds.value, "container cpu grows");
  assert.ok((c.cpu!.usageNanoCores?.value ?? 0n) > 0n, "container nanoCores > 0 while busy");
  assert.ok(c.memory!.workingSetBytes.value >= 4_000_000n, `working set ${c.memory!.workingSetBytes.value} holds the 4 MB string`);
  assert.ok(c.writableLayer!.usedBytes.value >= 64n * 1024n);
  assert.equal(c.writableLayer!.inodesUsed.value, 3n);
  // The collector reads the pod and container cgroups at slightly different moments: read the pod
  // again now, after the container sample, so the comparison cannot race with the busy loop.
  const podNow = await reader.read(pod);
  assert.ok(podNow.cpu!.usageCoreNanoSeconds >= c.cpu!.usageCoreNanoSeconds.value, "pod cgroup includes the container");
  assert.ok(last.linux.cpu!.usageCoreNanoSeconds.value > 0n);
  assert.ok(last.linux.process!.processCount.value >= 1n);
  assert.deepEqual(last.linux.network?.interfaces, [], "a fresh netns has only loopback, which is left out");
});
