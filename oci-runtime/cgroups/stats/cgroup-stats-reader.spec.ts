import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { BerthError, Code } from "../../foundation/errdefs.ts";
import { CgroupStatsReader } from "./cgroup-stats-reader.ts";
import { parseMountInfo } from "../../foundation/mountinfo.ts";
import { cgroupDirIn, cgroupLayout, hierarchyOf } from "../mode.ts";
import { parseFlatKeyed, parseSingle } from "./parse.ts";

const TS = 1_700_000_000_000_000_000n;
const CG = "/kubepods/pod123/abc";

async function writeFiles(dir: string, files: Record<string, string>) {
  await mkdir(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
}

describe("parse", () => {
  it("reads flat keyed files and skips junk", () => {
    const m = parseFlatKeyed("a 1\nb 22\nbad line here\nc max\n\n");
    assert.deepEqual([...m], [["a", 1n], ["b", 22n]]);
  });
  it("treats max as unlimited", () => {
    assert.equal(parseSingle("max\n"), undefined);
    assert.equal(parseSingle("42\n"), 42n);
  });
});

describe("mountinfo", () => {
  const text = [
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755",
    "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct",
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory",
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd",
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate",
    "50 23 0:50 /kubepods /var/lib/with\\040space rw - cgroup cgroup rw,pids",
  ].join("\n");
  it("finds co-mounted controllers, unified and escaped mount points", () => {
    const m = cgroupLayout(parseMountInfo(text));
    assert.equal(hierarchyOf(m, "cpu")?.mountPoint, "/sys/fs/cgroup/cpu,cpuacct");
    assert.equal(hierarchyOf(m, "cpuacct")?.mountPoint, "/sys/fs/cgroup/cpu,cpuacct");
    assert.equal(hierarchyOf(m, "memory")?.mountPoint, "/sys/fs/cgroup/memory");
    assert.equal(hierarchyOf(m, "name=systemd")?.mountPoint, "/sys/fs/cgroup/systemd");
    assert.equal(m.v2, "/sys/fs/cgroup/unified");
    assert.equal(m.mode, "hybrid");
    const pids = hierarchyOf(m, "pids")!;
    assert.equal(cgroupDirIn(pids.mountPoint, pids.root, "/kubepods/pod1/c1"), "/var/lib/with space/pod1/c1");
  });
  it("detects pure v2", () => {
    const m = cgroupLayout(parseMountInfo("30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw"));
    assert.equal(m.mode, "v2");
    assert.equal(cgroupDirIn(m.v2!, m.v2Root, "kubepods/../x/y"), "/sys/fs/cgroup/kubepods/x/y");
    assert.equal(cgroupDirIn(m.v2!, m.v2Root, "/../../etc"), "/sys/fs/cgroup/etc", "never leaves the mount");
  });
});

describe("cgroup v1 / hybrid", () => {
  let root: string;
  let reader: CgroupStatsReader;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), "berth-cgstats-"));
    const mp = (c: string) => ({ mountPoint: join(root, c), root: "/", controllers: [c] });
    reader = new CgroupStatsReader({
      layout: { mode: "hybrid", v1: [mp("cpu"), mp("cpuacct"), mp("memory"), mp("pids")], v2: join(root, "unified"), v2Root: "/" },
      now: () => TS,
    });
    await writeFiles(join(root, "cpuacct", CG), {
      "cpuacct.usage": "5000000000\n",
      "cpuacct.stat": "user 300\nsystem 200\n",
    });
    await writeFiles(join(root, "cpu", CG), { "cpu.stat": "nr_periods 10\nnr_throttled 3\nthrottled_time 777\n" });
    await writeFiles(join(root, "memory", CG), {
      "memory.usage_in_bytes": "104857600\n",
      "memory.limit_in_bytes": "209715200\n",
      "memory.memsw.usage_in_bytes": "105857600\n",
      "memory.failcnt": "4\n",
      "memory.stat": "cache 1\nrss 2\ninactive_file 3\ntotal_cache 40000000\ntotal_rss 50000000\ntotal_inactive_file 4857600\ntotal_pgfault 900\ntotal_pgmajfault 9\ntotal_mapped_file 123\n",
    });
    await writeFiles(join(root, "pids", CG), { "pids.current": "7\n", "pids.max": "max\n" });
    await writeFiles(join(root, "unified", CG), { "hugetlb.2MB.current": "2097152\n", "hugetlb.1GB.current": "0\n", "hugetlb.2MB.max": "max\n" });
    await writeFiles(join(root, "memory", "/unlimited"), {
      "memory.usage_in_bytes": "100\n",
      "memory.limit_in_bytes": "9223372036854771712\n",
      "memory.stat": "total_inactive_file 500\n",
    });
  });
  after(() => rm(root, { recursive: true, force: true }));

  it("reads cpu, memory, pids and hugetlb", async () => {
    const s = await reader.read(CG);
    assert.equal(s.version, 1);
    assert.deepEqual(s.cpu, {
      timestamp: TS, usageCoreNanoSeconds: 5_000_000_000n, userNanoSeconds: 3_000_000_000n, systemNanoSeconds: 2_000_000_000n,
      periods: 10n, throttledPeriods: 3n, throttledNanoSeconds: 777n,
    });
    assert.deepEqual(s.memory, {
      timestamp: TS, usageBytes: 104857600n, workingSetBytes: 100000000n, rssBytes: 50000000n, pageFaults: 900n, majorPageFaults: 9n,
      cacheBytes: 40000000n, mappedFileBytes: 123n, swapBytes: 1000000n, failcnt: 4n, limitBytes: 209715200n, availableBytes: 109715200n,
    });
    assert.deepEqual(s.pids, { timestamp: TS, count: 7n });
    assert.deepEqual(s.hugetlb, [{ pageSize: "1GB", usageBytes: 0n }, { pageSize: "2MB", usageBytes: 2097152n }]);
  });

  it("floors working set at zero and treats the v1 huge limit as unlimited", async () => {
    const s = await reader.read("/unlimited");
    assert.equal(s.memory?.workingSetBytes, 0n);
    assert.equal(s.memory?.limitBytes, undefined);
    assert.equal(s.memory?.availableBytes, undefined);
    assert.equal(s.cpu, undefined);
  });

  it("fails with not found for a missing cgroup", async () => {
    await assert.rejects(reader.read("/kubepods/nope"), (e: unknown) => e instanceof BerthError && e.code === Code.NOT_FOUND && /nope/.test(e.message));
  });
});

describe("cgroup v2", () => {
  let root: string;
  let reader: CgroupStatsReader;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), "berth-cgstats2-"));
    const mi = join(root, "mountinfo");
    await writeFile(mi, `30 23 0:26 / ${root}/fs rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n`);
    reader = new CgroupStatsReader({ mountinfoPath: mi, now: () => TS });
    await writeFiles(join(root, "fs", CG), {
      "cpu.stat": "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\nnr_periods 1\nnr_throttled 0\nthrottled_usec 0\n",
      "memory.current": "8192\n",
      "memory.max": "max\n",
      "memory.stat": "anon 4096\nfile 4096\ninactive_file 1024\nfile_mapped 12\nkernel 99\npgfault 11\npgmajfault 1\n",
      "memory.swap.current": "0\n",
      "memory.events": "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n",
      "pids.current": "3\n",
      "pids.max": "100\n",
      "hugetlb.2MB.current": "0\n",
    });
  });
  after(() => rm(root, { recursive: true, force: true }));

  it("reads cpu.stat, memory.* and pids from one directory", async () => {
    const s = await reader.read(CG);
    assert.equal(await reader.mode(), "v2");
    assert.equal(s.version, 2);
    assert.equal(s.cpu?.usageCoreNanoSeconds, 2_500_000n);
    assert.equal(s.cpu?.userNanoSeconds, 2_000_000n);
    assert.equal(s.cpu?.systemNanoSeconds, 500_000n);
    assert.deepEqual(s.memory, {
      timestamp: TS, usageBytes: 8192n, workingSetBytes: 7168n, rssBytes: 4096n, pageFaults: 11n, majorPageFaults: 1n,
      cacheBytes: 4096n, mappedFileBytes: 12n, kernelBytes: 99n, swapBytes: 0n, failcnt: 2n, oomKills: 1n,
    });
    assert.deepEqual(s.pids, { timestamp: TS, count: 3n, limit: 100n });
    assert.deepEqual(s.hugetlb, [{ pageSize: "2MB", usageBytes: 0n }]);
  });

  it("computes available bytes under a limit", async () => {
    await writeFile(join(root, "fs", CG, "memory.max"), "10240\n");
    const s = await reader.read(CG);
    assert.equal(s.memory?.limitBytes, 10240n);
    assert.equal(s.memory?.availableBytes, 3072n);
  });

  it("fails with not found for a missing cgroup", async () => {
    await assert.rejects(reader.read("/gone"), (e: unknown) => e instanceof BerthError && e.code === Code.NOT_FOUND);
  });
});
