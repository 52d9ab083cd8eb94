import assert from "node:assert/strict";
import { mkdtemp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { CgroupAttachWarmer, MAX_FAILURES, ownProcsFile } from "./attach-warm.ts";
import type { CgroupLayout } from "./mode.ts";

const hybrid: CgroupLayout = {
  mode: "hybrid",
  v1: [{ mountPoint: "/sys/fs/cgroup/cpu", controllers: ["cpu"] }, { mountPoint: "/sys/fs/cgroup/pids", root: "/", controllers: ["pids"] }],
  v2: "/sys/fs/cgroup/unified", v2Root: "/",
};
const v1: CgroupLayout = { mode: "v1", v1: [{ mountPoint: "/sys/fs/cgroup/cpu,cpuacct", controllers: ["cpu", "cpuacct"] }, { mountPoint: "/sys/fs/cgroup/pids", controllers: ["pids"] }] };

describe("ownProcsFile", () => {
  it("picks the v2 tree when there is one", () => {
    assert.equal(ownProcsFile(hybrid, "2:cpu:/a\n1:pids:/b\n0::/system.slice/berth.service\n"), "/sys/fs/cgroup/unified/system.slice/berth.service/cgroup.procs");
    assert.equal(ownProcsFile({ mode: "v2", v1: [], v2: "/sys/fs/cgroup", v2Root: "/" }, "0::/\n"), "/sys/fs/cgroup/cgroup.procs");
  });
  it("takes a containerised mount's root off the front", () => {
    assert.equal(ownProcsFile({ mode: "v2", v1: [], v2: "/sys/fs/cgroup", v2Root: "/kubepods/x" }, "0::/kubepods/x/berth\n"), "/sys/fs/cgroup/berth/cgroup.procs");
  });
  it("falls back to the first v1 hierarchy listed, co-mounted controllers too", () => {
    assert.equal(ownProcsFile(v1, "5:pids:/p\n3:cpu,cpuacct:/c\n"), "/sys/fs/cgroup/cpu,cpuacct/c/cgroup.procs");
    assert.equal(ownProcsFile(hybrid, "2:cpu:/a\n"), "/sys/fs/cgroup/cpu/a/cgroup.procs");
  });
  it("answers undefined rather than guess: a path or a mount root with '..' (a cgroup above the namespace), a path outside the mounted cgroup", () => {
    assert.equal(ownProcsFile(hybrid, "0::/../../etc\n"), undefined);
    // docker with cgroupns=private and the host's cgroupfs bind-mounted: mountinfo shows the root as /../..
    assert.equal(ownProcsFile({ mode: "v2", v1: [], v2: "/sys/fs/cgroup", v2Root: "/../.." }, "0::/\n"), undefined);
    assert.equal(ownProcsFile({ mode: "v2", v1: [], v2: "/sys/fs/cgroup", v2Root: "/kubepods/x" }, "0::/other\n"), undefined);
    assert.equal(ownProcsFile({ mode: "v2", v1: [], v2: "/sys/fs/cgroup", v2Root: "/kubepods/x" }, "0::/kubepods/xy\n"), undefined);
    assert.equal(ownProcsFile({ mode: "v2", v1: [], v2: "/sys/fs/cgroup", v2Root: "/kubepods/x" }, "0::/kubepods/x\n"), "/sys/fs/cgroup/cgroup.procs");
    assert.equal(ownProcsFile({ mode: "v1", v1: [{ mountPoint: "/sys/fs/cgroup/pids", root: "/../a", controllers: ["pids"] }] }, "3:pids:/\n"), undefined);
  });
  it("takes a v1 cpuset hierarchy only when no other fits (a new cpuset cgroup has no cpus)", () => {
    const layout: CgroupLayout = { mode: "v1", v1: [{ mountPoint: "/sys/fs/cgroup/cpuset", controllers: ["cpuset"] }, { mountPoint: "/sys/fs/cgroup/pids", controllers: ["pids"] }] };
    assert.equal(ownProcsFile(layout, "4:cpuset:/c\n3:pids:/p\n"), "/sys/fs/cgroup/pids/p/cgroup.procs");
    assert.equal(ownProcsFile(layout, "4:cpuset:/c\n"), "/sys/fs/cgroup/cpuset/c/cgroup.procs");
  });
  it("answers undefined for a removed cgroup or no line that fits", () => {
    assert.equal(ownProcsFile({ mode: "v2", v1: [], v2: "/sys/fs/cgroup", v2Root: "/" }, "0::/gone (deleted)\n"), undefined);
    assert.equal(ownProcsFile(v1, "9:name=systemd:/x\n"), undefined);
    assert.equal(ownProcsFile(v1, ""), undefined);
  });
});

describe("CgroupAttachWarmer", () => {
  it("writes the pid into the procs file of its own cgroup, read fresh each time", async () => {
    const dir = await mkdtemp(join(tmpdir(), "berth-warm-"));
    try {
      // A stand-in v2 tree: the process's cgroup (from /proc/self/cgroup) made as a directory.
      const own = /^0::(\/.*)$/m.exec(await readFile("/proc/self/cgroup", "utf8"))?.[1] ?? "/";
      const cg = join(dir, own);
      await mkdir(cg, { recursive: true });
      await writeFile(join(cg, "cgroup.procs"), "");
      const w = new CgroupAttachWarmer({ layout: async () => ({ mode: "v2", v1: [], v2: dir, v2Root: "/" }), pid: process.pid });
      assert.equal(await w.warm(), true);
      assert.equal(await readFile(join(cg, "cgroup.procs"), "utf8"), String(process.pid));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("shares a write under way with later callers", async () => {
    let layouts = 0;
    const w = new CgroupAttachWarmer({ layout: async () => { layouts++; return { mode: "v2", v1: [], v2: "/nonexistent-berth-test", v2Root: "/" }; } });
    const a = w.warm();
    const b = w.warm();
    assert.equal(a, b);
    assert.equal(await a, false);
    assert.equal(layouts, 1);
  });

  it(`gives up after ${MAX_FAILURES} failed writes in a row, saying so once`, async () => {
    const told: Error[] = [];
    const w = new CgroupAttachWarmer({ layout: async () => ({ mode: "v2", v1: [], v2: "/nonexistent-berth-test", v2Root: "/" }), onGiveUp: (e) => told.push(e) });
    for (let i = 0; i < MAX_FAILURES; i++) assert.equal(await w.warm(), false);
    assert.equal(w.off, true);
    assert.equal(told.length, 1);
    assert.match(told[0]!.message, /nonexistent-berth-test/);
    assert.equal(await w.warm(), false);
    assert.equal(told.length, 1);
  });

  it("names the process when no cgroup line fits", async () => {
    const told: Error[] = [];
    const w = new CgroupAttachWarmer({ layout: async () => ({ mode: "v1", v1: [] }), pid: process.pid, onGiveUp: (e) => told.push(e) });
    for (let i = 0; i < MAX_FAILURES; i++) await w.warm();
    assert.match(told[0]!.message, new RegExp(`no cgroup of process ${process.pid} in /proc/${process.pid}/cgroup that can be named exactly`));
  });
});
