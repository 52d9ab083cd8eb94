// The pod's /dev/shm tmpfs (needs root).

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, stat, writeFile, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findMount, readMountInfo } from "../../oci-runtime/foundation/mountinfo.ts";
import { mountShm, unmountShm } from "./pod-files.ts";
import { runCommand } from "../../oci-runtime/foundation/run-command.ts";
import { defaultConfig } from "../config.ts";
import { mountHelperPath } from "../../oci-runtime/mounts/mount-helper.ts";

const helper = mountHelperPath(defaultConfig().runtime.io_helper);

const dir = await mkdtemp(join(tmpdir(), "berth-shm-it-"));
after(async () => {
  for (const m of (await readMountInfo()).filter((m) => m.mountPoint.startsWith(dir)).reverse()) await runCommand("umount", [m.mountPoint]);
  await rm(dir, { recursive: true, force: true });
});

const superOptions = async (path: string) => {
  const text = (await runCommand("grep", [` ${path} `, "/proc/self/mountinfo"])).stdout;
  return text.trim().split(" ").at(-1)!.split(",");
};

// Both ways of mounting it: util-linux mount, and one system call in berth-mount (what berthd uses).
for (const way of [{ name: "mount", helper: undefined }, { name: "berth-mount", helper }]) {
  const mountWay = (path: string, size?: number) => mountShm(path, size, way.helper);

test(`${way.name}: mounts a 64 MiB tmpfs (nosuid, nodev, noexec, mode 1777) by default, idempotently, and unmounts it`, async () => {
  const shm = join(dir, `pod1-${way.name}`, "shm");
  await mountWay(shm);
  await mountWay(shm);
  const m = await findMount(shm);
  assert.equal(m?.fsType, "tmpfs");
  assert.equal((await readMountInfo()).filter((x) => x.mountPoint === shm).length, 1, "mounted once");
  const opts = await superOptions(shm);
  assert.ok(opts.includes("size=65536k"), opts.join(","));
  const perMount = (await runCommand("grep", [` ${shm} `, "/proc/self/mountinfo"])).stdout.split(" ")[5]!.split(",");
  for (const o of ["nosuid", "nodev", "noexec"]) assert.ok(perMount.includes(o), `${o} in ${perMount.join(",")}`);
  assert.equal((await stat(shm)).mode & 0o7777, 0o1777);
  await writeFile(join(shm, "seg"), "x");
  await unmountShm(shm);
  assert.equal(await findMount(shm), undefined);
  assert.deepEqual(await readdir(shm), [], "the segment lived on the tmpfs");
  await unmountShm(shm);
  await unmountShm(join(dir, "never-created"));
});

test(`${way.name}: honours the size option and refuses sizes out of range`, async () => {
  const shm = join(dir, `pod2-${way.name}`, "shm");
  await mountWay(shm, 8 * 1024 * 1024);
  try {
    assert.ok((await superOptions(shm)).includes("size=8192k"));
  } finally {
    await unmountShm(shm);
  }
  await assert.rejects(mountWay(shm, 0), /invalid shm size 0/);
  await assert.rejects(mountWay(shm, 1e21), /invalid shm size 1e\+21 \(1 to 1000000000000000 bytes\)/);
  assert.equal(await findMount(shm), undefined, "nothing mounted by a refused size");
});
}
