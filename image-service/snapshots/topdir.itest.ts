// The snapshotter flags its root (the layers' parent) and containers/ as ext4 top directories
// (chattr +T), so ext4's Orlov allocator gives each new layer and container dir a block group of
// its own; where the flag cannot be set (another file system, no chattr) berthd says why and
// works as before. Each case runs on a file system the test makes: an ext4 without a journal (as
// on the development machine) loop-mounted from a file, and a tmpfs.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Snapshotter } from "./snapshotter.ts";
import { startBerthd } from "../../conformance/lib/berthd.ts";

/** The attribute letters lsattr shows for a directory (not its contents). */
const attrs = (dir: string) => execFileSync("lsattr", ["-d", dir], { encoding: "utf8" }).trim().split(/\s+/)[0]!;

describe("layer and container parents are ext4 top directories (chattr +T)", () => {
  let dir: string;
  let ext4: string;
  let tmpfs: string;
  const mounted: string[] = [];
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "berth-topdir-"));
    ext4 = path.join(dir, "ext4");
    tmpfs = path.join(dir, "tmpfs");
    await mkdir(ext4);
    await mkdir(tmpfs);
    const img = path.join(dir, "fs.img");
    execFileSync("truncate", ["-s", "64M", img]);
    execFileSync("mkfs.ext4", ["-q", "-O", "^has_journal", img]);
    execFileSync("mount", ["-o", "loop", img, ext4]);
    mounted.push(ext4);
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=8m", "tmpfs", tmpfs]);
    mounted.push(tmpfs);
  });
  after(async () => {
    // A mount still busy is detached lazily (the loop device goes with its last user), so the
    // removal below never walks into a mounted file system.
    for (const m of mounted) {
      try { execFileSync("umount", [m]); } catch { execFileSync("umount", ["-l", m]); }
    }
    await rm(dir, { recursive: true, force: true });
  });

  it("sets the flag on the root and containers/ on ext4, and not on the dirs below", async () => {
    const snaps = new Snapshotter(path.join(ext4, "snapshots"));
    await mkdir(snaps.root, { mode: 0o700 });
    await snaps.init();
    assert.equal(snaps.topDirsUnset, undefined);
    assert.match(attrs(snaps.root), /T/);
    assert.match(attrs(path.join(snaps.root, "containers")), /T/);
    // A layer dir is one tree: its own subdirectories stay near it (the flag is not inherited).
    const { tmp, fs } = await snaps.prepare();
    assert.doesNotMatch(attrs(tmp), /T/);
    assert.doesNotMatch(attrs(fs), /T/);
    // A later start sets it again where it was taken off.
    execFileSync("chattr", ["-T", snaps.root, path.join(snaps.root, "containers")]);
    assert.doesNotMatch(attrs(snaps.root), /T/);
    await snaps.init();
    assert.match(attrs(snaps.root), /T/);
    assert.match(attrs(path.join(snaps.root, "containers")), /T/);
  });

  it("works without the flag on a file system that has none (tmpfs), and says why", async () => {
    const snaps = new Snapshotter(path.join(tmpfs, "snapshots"));
    await mkdir(snaps.root, { mode: 0o700 });
    await snaps.init();
    assert.match(snaps.topDirsUnset ?? "", /chattr|supported|ioctl/i, `reason: ${snaps.topDirsUnset}`);
    assert.ok((await stat(path.join(snaps.root, "containers"))).isDirectory(), "the layout is made all the same");
    const { fs } = await snaps.prepare();
    assert.ok((await stat(fs)).isDirectory());
  });

  it("works without the flag when chattr is not installed, and says so", async () => {
    const snaps = new Snapshotter(path.join(ext4, "snapshots-nochattr"));
    await mkdir(snaps.root, { mode: 0o700 });
    const saved = process.env.PATH;
    process.env.PATH = path.join(dir, "no-such-bin");
    try {
      await snaps.init();
    } finally {
      process.env.PATH = saved;
    }
    assert.match(snaps.topDirsUnset ?? "", /^chattr could not run: .*ENOENT/, `reason: ${snaps.topDirsUnset}`);
    assert.doesNotMatch(attrs(snaps.root), /T/);
  });

  it("berthd flags <root>/snapshots on ext4, and logs why not on tmpfs", async () => {
    const onExt4 = await startBerthd({ root: path.join(ext4, "berth") });
    try {
      assert.match(attrs(path.join(ext4, "berth", "snapshots")), /T/);
      assert.doesNotMatch(onExt4.stderr.join(""), /not ext4 top directories/);
    } finally {
      await onExt4.cleanup();
    }
    const onTmpfs = await startBerthd({ root: path.join(tmpfs, "berth") });
    try {
      assert.match(onTmpfs.stderr.join(""), /layer directories are not ext4 top directories \(chattr \+T\)/);
      const st = await stat(path.join(tmpfs, "berth", "snapshots", "containers"));
      assert.ok(st.isDirectory());
    } finally {
      await onTmpfs.cleanup();
    }
  });
});
