import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cgroupLayout } from "../cgroups/mode.ts";
import { conmonCgroupPath, joinCgroupCommand, prepareCgroup } from "./conmon-cgroup.ts";
import { conmonArgs } from "./conmon.ts";

test("conmon cgroup path: per container under the pod's parent, or one shared path; bad input is refused", () => {
  const id = "a".repeat(64);
  assert.equal(conmonCgroupPath("pod", "/kubepods/besteffort/pod1", id), `/kubepods/besteffort/pod1/berth-conmon-${id}`);
  assert.equal(conmonCgroupPath("pod", "kubepods/pod1/", id), `/kubepods/pod1/berth-conmon-${id}`);
  assert.equal(conmonCgroupPath("pod", "", id), `/berth/berth-conmon-${id}`);
  assert.equal(conmonCgroupPath("system.slice/berth-conmon", "/kubepods/x", id), "/system.slice/berth-conmon");
  assert.equal(conmonCgroupPath("/berth-conmon", "", id), "/berth-conmon");
  assert.throws(() => conmonCgroupPath("pod", "/kubepods/../../etc", id), /cgroup_parent "\/kubepods\/..\/..\/etc" contains/);
  assert.throws(() => conmonCgroupPath("a/../b", "", id), /runtime.conmon_cgroup "a\/..\/b" is not a cgroup path/);
  assert.throws(() => conmonCgroupPath("pod", "", "../x"), /invalid container id "..\/x"/);
});

test("the join wrapper writes its own pid to every cgroup.procs, then execs the program with the same pid; hostile paths and arguments stay data", () => {
  const dir = mkdtempSync(join(tmpdir(), "berth-cg-spec-"));
  try {
    const files = [join(dir, "a procs"), join(dir, "$(touch pwned);b")];
    for (const f of files) writeFileSync(f, "");
    const out = join(dir, "out");
    // the "program" prints its own pid; one argument tries shell injection
    const cmd = joinCgroupCommand(files, "/bin/sh", ["-c", `echo $$ > "$1"`, "prog", out, "; touch pwned2"]);
    assert.equal(cmd.file, "/bin/sh");
    const r = spawnSync(cmd.file, cmd.args, { cwd: dir, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const pid = readFileSync(out, "utf8").trim();
    assert.match(pid, /^\d+$/);
    assert.equal(r.pid, Number(pid), "exec keeps the pid that joined the cgroups");
    for (const f of files) assert.equal(readFileSync(f, "utf8").trim(), pid);
    assert.throws(() => readFileSync(join(dir, "pwned")), { code: "ENOENT" });
    assert.throws(() => readFileSync(join(dir, "pwned2")), { code: "ENOENT" });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the join wrapper never starts the program when a cgroup cannot be joined, and says which", () => {
  const dir = mkdtempSync(join(tmpdir(), "berth-cg-spec-"));
  try {
    const ok = join(dir, "ok");
    writeFileSync(ok, "");
    const bad = join(dir, "missing-dir", "cgroup.procs");
    const marker = join(dir, "ran");
    const cmd = joinCgroupCommand([ok, bad], "/bin/sh", ["-c", `touch "$1"`, "prog", marker]);
    const r = spawnSync(cmd.file, cmd.args, { encoding: "utf8" });
    assert.equal(r.status, 97);
    assert.ok(r.stderr.includes(`berth: cannot move conmon (pid ${r.pid}) into ${bad}`), r.stderr);
    assert.throws(() => readFileSync(marker), { code: "ENOENT" });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("without a cgroup, conmon runs directly", () => {
  const args = conmonArgs({ runtime: { binary: "/usr/sbin/runc", globalArgs: () => [] }, id: "c1", bundle: "/b", logPath: "/l", exitDir: "/e", socketDir: "/s" });
  assert.deepEqual(joinCgroupCommand([], "/usr/bin/conmon", args), { file: "/usr/bin/conmon", args });
});

test("prepareCgroup creates the path in every hierarchy and seeds new cpuset levels from their parent", async () => {
  const dir = mkdtempSync(join(tmpdir(), "berth-cg-spec-"));
  try {
    const layout = cgroupLayout([]);
    layout.v1 = [{ mountPoint: join(dir, "cpuset"), controllers: ["cpuset"] }, { mountPoint: join(dir, "pids"), controllers: ["pids"] }];
    layout.v2 = join(dir, "unified");
    for (const m of [...layout.v1.map((h) => h.mountPoint), layout.v2]) spawnSync("mkdir", ["-p", m]);
    writeFileSync(join(dir, "cpuset", "cpuset.cpus"), "0-1\n");
    writeFileSync(join(dir, "cpuset", "cpuset.mems"), "0\n");
    const procs = await prepareCgroup(layout, "/berth/berth-conmon-x");
    assert.deepEqual(procs, [
      join(dir, "cpuset/berth/berth-conmon-x/cgroup.procs"), join(dir, "pids/berth/berth-conmon-x/cgroup.procs"), join(dir, "unified/berth/berth-conmon-x/cgroup.procs"),
    ]);
    for (const lvl of ["berth", "berth/berth-conmon-x"]) {
      assert.equal(readFileSync(join(dir, "cpuset", lvl, "cpuset.cpus"), "utf8"), "0-1");
      assert.equal(readFileSync(join(dir, "cpuset", lvl, "cpuset.mems"), "utf8"), "0");
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
