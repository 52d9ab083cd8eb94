import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, mkdir, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BerthError, Code } from "../foundation/errdefs.ts";
import { newSpec } from "./default-spec.ts";
import { parseGroup, parsePasswd, resolveUser, withUser } from "./user.ts";
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
