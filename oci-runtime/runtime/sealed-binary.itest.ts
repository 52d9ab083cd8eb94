// Sealed runtime copies (sealed-binary.ts) with the real berth-mount helper: what runs is the
// memfd, it cannot be changed, a changed or removed binary on disk is followed, and the helper
// refuses what is not a runnable binary of a bounded size.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { chmod, copyFile, mkdtemp, open, readlink, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import { MEMFD_LINK, sealBinary, SealedRuntimeBinary } from "./sealed-binary.ts";

const run = promisify(execFile);
const HELPER = "/usr/local/libexec/berth/berth-mount";
let dir: string;

before(async () => { dir = await mkdtemp(join(tmpdir(), "berth-seal-")); });
after(async () => { await rm(dir, { recursive: true, force: true }); });

const tool = async (name: string, from: string) => {
  const p = join(dir, name);
  await copyFile(from, p);
  await chmod(p, 0o755);
  return p;
};

describe("sealBinary", () => {
  it("answers a path under this process's fds that runs the copy, a memfd", async () => {
    const echo = await tool("echo", "/bin/echo");
    const s = await sealBinary(HELPER, echo);
    try {
      assert.equal(s.path, `/proc/${process.pid}/fd/${s.handle.fd}`);
      assert.match(await readlink(s.path), /^\/memfd:berth-sealed-runtime \(deleted\)$/);
      assert.equal((await run(s.path, ["sealed", "hi"])).stdout, "sealed hi\n");
      // The running process's own executable is the memfd (what runc's check looks at).
      const sleeper = await sealBinary(HELPER, await tool("sleep", "/bin/sleep"));
      try {
        const child = spawn(sleeper.path, ["600"], { stdio: "ignore" });
        const closed = new Promise((r) => child.once("close", r));
        await new Promise((r) => child.once("spawn", r));
        assert.match(await readlink(`/proc/${child.pid}/exe`), /^\/memfd:berth-sealed-runtime \(deleted\)$/);
        child.kill("SIGKILL");
        await closed;
      } finally {
        await sleeper.handle.close();
      }
    } finally {
      await s.handle.close();
    }
  });

  it("the copy cannot be written, grown or shrunk, even by root", async () => {
    const s = await sealBinary(HELPER, await tool("echo2", "/bin/echo"));
    try {
      const fh = await open(s.path, "r+");
      try {
        await assert.rejects(fh.write(Buffer.from("#!/bin/sh\n"), 0, 10, 0), /EPERM/);
        await assert.rejects(fh.truncate(0), /EPERM/);
        await assert.rejects(fh.write(Buffer.from("x"), 0, 1, s.size), /EPERM/);
      } finally {
        await fh.close();
      }
      assert.equal((await s.handle.stat()).size, s.size);
    } finally {
      await s.handle.close();
    }
  });

  it("refuses a missing file, a file that is not executable, a directory and one over 256 MiB, naming it", async () => {
    await assert.rejects(sealBinary(HELPER, join(dir, "missing")), /open binary: No such file/);
    const plain = join(dir, "plain");
    await writeFile(plain, "data");
    await assert.rejects(sealBinary(HELPER, plain), /not executable/);
    await assert.rejects(sealBinary(HELPER, dir), /not a regular file/);
    const huge = join(dir, "huge");
    await writeFile(huge, "");
    await truncate(huge, 300 * 1024 * 1024); // sparse: nothing is written
    await chmod(huge, 0o755);
    await assert.rejects(sealBinary(HELPER, huge), /314572800 bytes \(1 to 268435456 allowed\)/);
    await rm(huge);
  });
});

describe("SealedRuntimeBinary", () => {
  it("follows the binary on disk: a new copy when it changes, none while it is gone, the old path still runs for a while", async () => {
    const bin = await tool("rt", "/bin/echo");
    const problems: string[] = [];
    const s = new SealedRuntimeBinary(HELPER, bin, (m) => problems.push(m));
    try {
      assert.equal(await s.start(3_600_000), true);
      const first = s.path!;
      assert.equal((await run(first, ["one"])).stdout, "one\n");
      await s.check();
      assert.equal(s.path, first, "unchanged binary: same copy");

      // An upgrade: the file is replaced (a new inode, as a package manager does).
      await rm(bin);
      await tool("rt", "/bin/true");
      await s.check();
      const second = s.path!;
      assert.notEqual(second, first);
      assert.equal((await run(second, ["two"])).stdout, "", "the new copy is the new binary");
      assert.equal((await run(first, ["old"])).stdout, "old\n", "the old copy stays open for calls that took its path");
      assert.equal(await readlink(first), MEMFD_LINK, "its fd still names the old copy, never another file");
      assert.equal(s.retired, 1);

      // Removed: no copy, said once; back: a copy again.
      await rm(bin);
      await s.check();
      await s.check();
      assert.equal(s.path, undefined);
      assert.equal(problems.length, 1);
      assert.match(problems[0]!, /cannot make a sealed copy of .*rt: cannot stat it/);
      await tool("rt", "/bin/echo");
      await s.check();
      assert.equal((await run(s.path!, ["three"])).stdout, "three\n");
    } finally {
      await s.close();
    }
    assert.equal(s.path, undefined);
  });

  it("a binary the helper refuses leaves no copy and says why once; it is tried again once it changes", async () => {
    const plain = join(dir, "plain-rt");
    await writeFile(plain, "not a program");
    const problems: string[] = [];
    const s = new SealedRuntimeBinary(HELPER, plain, (m) => problems.push(m));
    try {
      assert.equal(await s.start(3_600_000), false);
      assert.equal(s.path, undefined);
      assert.match(problems[0]!, /not executable/);
      await s.check();
      assert.equal(problems.length, 1);
      await chmod(plain, 0o755); // a change (its ctime): tried again, and this time copied
      await s.check();
      assert.equal(await readlink(s.path!), MEMFD_LINK);
    } finally {
      await s.close();
    }
  });

  it("close() closes every copy it holds", async () => {
    const s = new SealedRuntimeBinary(HELPER, await tool("rt2", "/bin/echo"), () => {});
    await s.start(3_600_000);
    const fd = Number(s.path!.split("/").pop());
    await s.close();
    const now = await readlink(`/proc/self/fd/${fd}`).catch(() => "closed");
    assert.ok(!now.startsWith("/memfd:berth-sealed-runtime"), now);
  });
});
