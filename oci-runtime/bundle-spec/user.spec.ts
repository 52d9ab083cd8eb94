import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, mkdir, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BerthError, Code } from "../foundation/errdefs.ts";
import { newSpec } from "./default-spec.ts";
import { ImageUserFiles, parseGroup, parsePasswd, resolveUser, resolveUserInRootfs, withUser } from "./user.ts";
import { readRootfsFile, secureJoin } from "./rootfs-files.ts";

const passwd = parsePasswd("root:x:0:0:root:/root:/bin/sh\n# c\nwww:x:33:33:www:/var/www:/bin/false\nbad:x:a:b\napp:x:1000:1001::/home/app:/bin/sh\n");
const groups = parseGroup("root:x:0:\nwww:x:33:\nappgrp:x:1001:\nextra:x:2000:app,www\nmore:x:2001:app\n");
const isInvalid = (e: unknown) => e instanceof BerthError && e.code === Code.INVALID_ARGUMENT;

test("parsers skip comments and malformed lines", () => {
  assert.deepEqual(passwd.map((p) => p.name), ["root", "www", "app"]);
  assert.deepEqual(groups.find((g) => g.name === "extra")!.members, ["app", "www"]);
});

test("no user anywhere is root", () => {
  assert.deepEqual(resolveUser({}, passwd, groups), { uid: 0, gid: 0, additionalGids: [0], username: "root", home: "/root" });
});

test("image user by name takes uid, gid and merged supplemental groups", () => {
  const u = resolveUser({ imageUser: "app" }, passwd, groups);
  assert.deepEqual([u.uid, u.gid, u.additionalGids], [1000, 1001, [1001, 2000, 2001]]);
  assert.equal(u.home, "/home/app");
});

test("image user name:group resolves the group by name", () => {
  const u = resolveUser({ imageUser: "www:extra" }, passwd, groups);
  assert.deepEqual([u.uid, u.gid], [33, 2000]);
});

test("run_as_user overrides even a non-numeric image user", () => {
  const u = resolveUser({ runAsUser: 33, imageUser: "app" }, passwd, groups);
  assert.deepEqual([u.uid, u.gid, u.additionalGids], [33, 33, [33, 2000]]);
});

test("a numeric uid missing from passwd gets gid 0 and no file groups", () => {
  const u = resolveUser({ runAsUser: 4242 }, passwd, groups);
  assert.deepEqual([u.uid, u.gid, u.additionalGids], [4242, 0, [0]]);
});

test("run_as_username resolves by name; a missing name is invalid", () => {
  assert.equal(resolveUser({ runAsUsername: "www" }, passwd, groups).uid, 33);
  assert.throws(() => resolveUser({ runAsUsername: "nobody" }, passwd, groups), (e) => isInvalid(e) && /nobody/.test((e as Error).message));
});

test("run_as_user and run_as_username together are invalid", () => {
  assert.throws(() => resolveUser({ runAsUser: 33, runAsUsername: "www" }, passwd, groups), (e) => isInvalid(e) && /run_as_user.*run_as_username/.test((e as Error).message));
});

test("negative or out-of-range ids are invalid, naming the field", () => {
  assert.throws(() => resolveUser({ runAsUser: -1 }, passwd, groups), (e) => isInvalid(e) && /run_as_user -1/.test((e as Error).message));
  assert.throws(() => resolveUser({ runAsUser: 0, runAsGroup: 2 ** 32 }, passwd, groups), (e) => isInvalid(e) && /run_as_group/.test((e as Error).message));
  assert.throws(() => resolveUser({ supplementalGroups: [-5] }, passwd, groups), (e) => isInvalid(e) && /supplemental group -5/.test((e as Error).message));
});

test("run_as_group without any user is invalid; with a user it sets the gid", () => {
  assert.throws(() => resolveUser({ runAsGroup: 5 }, passwd, groups), isInvalid);
  assert.equal(resolveUser({ runAsUser: 1000, runAsGroup: 5 }, passwd, groups).gid, 5);
});

test("Strict policy keeps only the primary and CRI supplemental groups", () => {
  const u = resolveUser({ runAsUser: 1000, supplementalGroups: [3000], supplementalGroupsPolicy: "Strict" }, passwd, groups);
  assert.deepEqual(u.additionalGids, [1001, 3000]);
  const m = resolveUser({ runAsUser: 1000, supplementalGroups: [3000] }, passwd, groups);
  assert.deepEqual(m.additionalGids, [1001, 2000, 2001, 3000]);
});

test("an unknown group name is invalid", () => {
  assert.throws(() => resolveUser({ imageUser: "app:nogroup" }, passwd, groups), isInvalid);
});

test("secureJoin keeps absolute and .. symlinks inside the rootfs", async () => {
  const root = await mkdtemp(join(tmpdir(), "berth-user-"));
  try {
    await mkdir(join(root, "etc"));
    await symlink("/etc/shadow", join(root, "etc", "abs"));
    await symlink("../../../../etc/passwd", join(root, "etc", "rel"));
    assert.equal(await secureJoin(root, "/etc/abs"), join(root, "etc/shadow"));
    assert.equal(await secureJoin(root, "/etc/rel"), join(root, "etc/passwd"));
    assert.equal(await secureJoin(root, "/../../x"), join(root, "x"));
    // the host's /etc/passwd is never read through a symlink
    await symlink("/etc/passwd", join(root, "etc", "passwd"));
    assert.equal(await readRootfsFile(root, "/etc/passwd"), undefined);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test("withUser reads the rootfs files and sets HOME", async () => {
  const root = await mkdtemp(join(tmpdir(), "berth-user-"));
  try {
    await mkdir(join(root, "etc"));
    await writeFile(join(root, "etc/passwd"), "app:x:1000:1001::/home/app:/bin/sh\n");
    await writeFile(join(root, "etc/group"), "g:x:77:app\n");
    const spec = newSpec("rootfs");
    await withUser(root, { imageUser: "app" })(spec, undefined);
    assert.deepEqual(spec.process!.user, { uid: 1000, gid: 1001, additionalGids: [1001, 77] });
    assert.ok(spec.process!.env!.includes("HOME=/home/app"));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test("ImageUserFiles: an image's files are read once, after its rootfs is ready, then kept", async () => {
  const dir = await mkdtemp(join(tmpdir(), "berth-userfiles-"));
  try {
    const rootfs = (name: string, user: string) => async () => {
      const r = join(dir, name);
      await mkdir(join(r, "etc"), { recursive: true });
      await writeFile(join(r, "etc", "passwd"), `${user}:x:1000:1000::/home/${user}:/bin/sh\n`);
      await writeFile(join(r, "etc", "group"), `${user}:x:1000:\nextra:x:2000:${user}\n`);
      return r;
    };
    const cache = new ImageUserFiles();
    // The read waits for `ready`: the rootfs is written (as if mounted) only then.
    let makeFirst!: () => void;
    const ready = new Promise<void>((r) => { makeFirst = r; });
    const first = cache.get("sha256:img1", join(dir, "a"), ready.then(() => rootfs("a", "alice")()));
    await new Promise((r) => setTimeout(r, 20));
    makeFirst();
    assert.match((await first).passwd, /^alice:/);
    // Kept: a second rootfs of the same image is not read (its files differ here to show it) and nothing is awaited.
    await rootfs("b", "bob")();
    const never = new Promise<void>(() => {});
    const u = await resolveUserInRootfs(() => cache.get("sha256:img1", join(dir, "b"), never), { imageUser: "alice" });
    assert.deepEqual([u.uid, u.gid, u.additionalGids, u.home], [1000, 1000, [1000, 2000], "/home/alice"]);
    // Another image reads its own rootfs.
    assert.match((await cache.get("sha256:img2", join(dir, "b"), Promise.resolve())).passwd, /^bob:/);
    // A failed mount fails the read and keeps nothing.
    await assert.rejects(cache.get("sha256:img3", join(dir, "c"), Promise.reject(new Error("mount failed"))), /mount failed/);
    assert.equal(cache.size, 2);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("ImageUserFiles is bounded: the oldest image goes first, oversized files are never kept", async () => {
  const dir = await mkdtemp(join(tmpdir(), "berth-userfiles-"));
  try {
    await mkdir(join(dir, "r", "etc"), { recursive: true });
    await writeFile(join(dir, "r", "etc", "passwd"), "root:x:0:0::/root:/bin/sh\n");
    const cache = new ImageUserFiles(2, 100);
    for (const id of ["i1", "i2", "i3"]) await cache.get(id, join(dir, "r"), Promise.resolve());
    assert.equal(cache.size, 2);
    // i1 was dropped: it is read again (a rootfs that no longer exists reads as empty files).
    assert.equal((await cache.get("i1", join(dir, "gone"), Promise.resolve())).passwd, "");
    assert.match((await cache.get("i3", join(dir, "gone"), Promise.resolve())).passwd, /^root:/, "i3 is still kept");
    await writeFile(join(dir, "r", "etc", "passwd"), "x".repeat(101));
    await cache.get("big", join(dir, "r"), Promise.resolve());
    assert.equal((await cache.get("big", join(dir, "gone"), Promise.resolve())).passwd, "", "files over the byte bound are read each time");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
