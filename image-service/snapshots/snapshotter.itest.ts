// Snapshotter overlay mounts of many-layer images (options past the page-size limit go through
// short l/<prefix> symlinks): a pre-existing link with the same prefix that serves another layer
// (a grinded prefix collision) must not stand in for the image's layer, and removing a layer
// unlinks only its own link.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { isMountPoint, isOtherFilesystem, Snapshotter } from "./snapshotter.ts";
import { execFileSync } from "node:child_process";

const LAYERS = 60; // 60 x 68 bytes of lowerdir: past the 3.5 KB limit, so l/ links are used

const LAYER_HELPER = "/usr/local/libexec/berth/berth-layer";

for (const [how, helper] of [["berth-layer", LAYER_HELPER], ["mount(8)", undefined]] as const) describe(`snapshotter l/ links for many-layer images, mounted by ${how}`, () => {
  let dir: string;
  let snaps: Snapshotter;
  const chain: string[] = [];
  let other: string;
  const target = () => path.join(dir, "mnt");

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "berth-snapshotter-"));
    snaps = new Snapshotter(path.join(dir, "snapshots"), helper);
    await mkdir(snaps.root, { mode: 0o700 });
    await snaps.init();
    for (let i = 0; i < LAYERS; i++) {
      const c = "sha256:" + randomBytes(32).toString("hex");
      chain.push(c);
      await mkdir(snaps.dir(c), { recursive: true });
      await writeFile(path.join(snaps.dir(c), `layer-${i}`), String(i));
    }
    // Another image's layer whose chain id shares the first 12 hex of chain[5], its link in place.
    other = "sha256:" + chain[5]!.slice(7, 19) + randomBytes(26).toString("hex");
    await mkdir(snaps.dir(other), { recursive: true });
    await writeFile(path.join(snaps.dir(other), "layer-5"), "impostor");
    await writeFile(path.join(snaps.dir(other), "impostor"), "x");
    await mkdir(path.join(snaps.root, "l"), { mode: 0o700 });
    await symlink(`../${other.slice(7)}/fs`, path.join(snaps.root, "l", other.slice(7, 19)));
  });
  after(async () => {
    if (await isMountPoint(target())) await snaps.unmount(target());
    await rm(dir, { recursive: true, force: true });
  });

  it("mounts the image's own layer despite a colliding link, and remove() leaves the other layer's link", async () => {
    await snaps.prepareContainer("c1");
    await snaps.mount("c1", chain, target());
    try {
      assert.equal(await readFile(path.join(target(), "layer-5"), "utf8"), "5", "layer 5 is the image's own");
      assert.ok(!(await readdir(target())).includes("impostor"), "the colliding layer is not in the rootfs");
      for (let i = 0; i < LAYERS; i++) assert.equal(await readFile(path.join(target(), `layer-${i}`), "utf8"), i === 5 ? "5" : String(i));
    } finally {
      await snaps.unmount(target());
    }
    assert.equal(await readlink(path.join(snaps.root, "l", other.slice(7, 19))), `../${other.slice(7)}/fs`, "the other layer's link is untouched");
    await snaps.remove(chain[5]!);
    assert.equal(await readlink(path.join(snaps.root, "l", other.slice(7, 19))), `../${other.slice(7)}/fs`, "remove() left the other layer's link");
    const links = await readdir(path.join(snaps.root, "l"));
    for (const n of links) assert.notEqual(await readlink(path.join(snaps.root, "l", n)), `../${chain[5]!.slice(7)}/fs`, `removed layer's link ${n} is gone`);
    // and removing the other layer unlinks its own link
    await snaps.remove(other);
    assert.ok(!(await readdir(path.join(snaps.root, "l"))).includes(other.slice(7, 19)));
  });
});

describe("isOtherFilesystem (CreateContainer's check that nothing is mounted on a new rootfs yet)", () => {
  it("is true for a tmpfs mounted on the directory, false for a plain directory and a missing path", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "berth-otherfs-"));
    const mnt = path.join(dir, "m");
    await mkdir(mnt);
    try {
      assert.equal(await isOtherFilesystem(mnt), false);
      assert.equal(await isOtherFilesystem(path.join(dir, "missing")), false);
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt]);
      assert.equal(await isOtherFilesystem(mnt), true);
      assert.equal(await isMountPoint(mnt), true, "mountinfo agrees");
    } finally {
      try { execFileSync("umount", ["-l", mnt], { stdio: "ignore" }); } catch { /* not mounted: the mount itself failed */ }
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("a berth-layer that cannot mount (missing, or older and without --mount-overlay): mount(8) instead", () => {
  it("mounts through mount(8) when the helper is missing or answers with its usage", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "berth-ovl-old-"));
    try {
      const old = path.join(dir, "old-berth-layer");
      await writeFile(old, "#!/bin/sh\necho 'usage: berth-layer LAYER_DIR' >&2\nexit 2\n", { mode: 0o755 });
      for (const helper of [old, path.join(dir, "missing")]) {
        const snaps = new Snapshotter(path.join(dir, `snapshots-${path.basename(helper)}`), helper);
        await mkdir(snaps.root, { mode: 0o700 });
        await snaps.init();
        const c = "sha256:" + randomBytes(32).toString("hex");
        await mkdir(snaps.dir(c), { recursive: true });
        await writeFile(path.join(snaps.dir(c), "f"), "x");
        await snaps.prepareContainer("c1");
        const m = path.join(dir, `m-${path.basename(helper)}`);
        await snaps.mount("c1", [c], m);
        try {
          assert.equal(await readFile(path.join(m, "f"), "utf8"), "x");
        } finally {
          await snaps.unmount(m);
        }
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("berth-layer --mount-overlay refuses what is not an overlay mount it can make, naming why", () => {
  const run = (...args: string[]) => {
    try {
      execFileSync(LAYER_HELPER, ["--mount-overlay", ...args], { stdio: ["ignore", "ignore", "pipe"] });
      return "ok";
    } catch (err) {
      return String((err as { stderr?: Buffer }).stderr ?? err);
    }
  };
  it("relative paths, a newline or over 4095 bytes of options, a missing lower layer: nothing is mounted", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "berth-ovl-"));
    try {
      for (const d of ["l", "u", "w", "m"]) await mkdir(path.join(dir, d));
      const m = path.join(dir, "m");
      assert.match(run("relative", "lowerdir=l,upperdir=u,workdir=w", m), /must be absolute/);
      assert.match(run(dir, "lowerdir=l,upperdir=u,workdir=w", "m"), /must be absolute/);
      assert.match(run(dir, "lowerdir=l,upperdir=u,workdir=w\nx", m), /without a newline/);
      assert.match(run(dir, `lowerdir=${"l:".repeat(2100)}l,upperdir=u,workdir=w`, m), /1 to 4095 bytes/);
      assert.match(run(dir, "lowerdir=missing,upperdir=u,workdir=w", m), /mount-overlay ".*\/m": No such file or directory/);
      assert.equal(await isMountPoint(m), false);
      assert.equal(run(dir, "lowerdir=l,upperdir=u,workdir=w", m), "ok");
      assert.equal(await isMountPoint(m), true);
      execFileSync("umount", [m]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
