// berth's own mounts with the real berth-mount helper and kernel: a pinned pod user namespace,
// idmapped clones (ownership on both sides), recursive read-only clones, refusals and removal.
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmod, chown, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BerthError, Code } from "../foundation/errdefs.ts";
import { bindClone, createPodUserns, mountsUnder, podUsernsDir, removeUnder, sweepPrepared, containerMountsDir } from "./mount-helper.ts";
import { probeFilesystem } from "./features.ts";

const HELPER = "/usr/local/libexec/berth/berth-mount";
const U = { uids: { containerId: 0, hostId: 600000, length: 65536 }, gids: { containerId: 0, hostId: 700000, length: 65536 } };
let dir: string;
let state: string;

/** Runs `script` as root of the pinned user namespace (nsenter, no new mount namespace). */
const inUserns = (userns: string, script: string) =>
  execFileSync("nsenter", [`--user=${userns}`, "-S", "0", "-G", "0", "sh", "-c", script], { encoding: "utf8" });

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "berth-mounts-itest-"));
  await chmod(dir, 0o711); // the pod's root must be able to search its way to the clones
  state = join(dir, "state");
  await mkdir(state, { mode: 0o711 });
});

after(async () => {
  for (const m of await mountsUnder(dir)) execFileSync("umount", ["-l", m]);
  await rm(dir, { recursive: true, force: true });
});

test("the probe finds idmapped mounts, rro and overlay over an idmapped layer on this kernel, and leaves nothing mounted", async () => {
  const p = await probeFilesystem(HELPER, dir);
  assert.deepEqual({ idmap: p.idmap, rro: p.rro, overlay: p.overlayIdmappedLower }, { idmap: "", rro: "", overlay: "" });
  assert.deepEqual(await mountsUnder(dir), []);
  const bad = await probeFilesystem("/nonexistent/berth-mount", dir);
  assert.match(bad.idmap, /cannot run \/nonexistent\/berth-mount/);
});

test("a pinned pod user namespace with an idmapped clone: host ownership shows unchanged inside, the pod's root writes as host root", async () => {
  const pins = await createPodUserns(HELPER, state, "pod1", U, true);
  assert.equal(execFileSync("nsenter", [`--user=${pins.usernsPath}`, "cat", "/proc/self/uid_map"], { encoding: "utf8" }).trim().split(/\s+/).join(" "), "0 600000 65536");
  assert.match(execFileSync("nsenter", [`--net=${pins.netnsPath}`, "ip", "-br", "link", "show", "lo"], { encoding: "utf8" }), /UP/);
  // The pin directory is the pod root's alone.
  const st = await stat(podUsernsDir(state, "pod1"));
  assert.deepEqual([st.uid, st.gid, st.mode & 0o777], [600000, 700000, 0o700]);

  const src = join(dir, "src");
  await mkdir(src);
  await writeFile(join(src, "owned-1234"), "x");
  await chown(join(src, "owned-1234"), 1234, 1234);
  const clone = join(containerMountsDir(state, "c1"), "m0");
  await mkdir(containerMountsDir(state, "c1"), { recursive: true });
  await bindClone(HELPER, src, clone, { userns: pins.usernsPath, mode: "rw" });
  // Seen from the host through the clone: shifted into the pod's range.
  assert.equal((await stat(join(clone, "owned-1234"))).uid, 601234);
  // Seen from inside the pod's user namespace: as on the host.
  assert.equal(inUserns(pins.usernsPath, `stat -c %u:%g ${clone}/owned-1234`).trim(), "1234:1234");
  inUserns(pins.usernsPath, `echo hi > ${clone}/made-inside`);
  const made = await stat(join(src, "made-inside"));
  assert.deepEqual([made.uid, made.gid], [0, 0]);
  assert.equal(await readFile(join(src, "made-inside"), "utf8"), "hi\n");

  await removeUnder(HELPER, containerMountsDir(state, "c1"));
  await removeUnder(HELPER, podUsernsDir(state, "pod1"));
  assert.deepEqual(await mountsUnder(state), []);
});

test("a recursive read-only clone makes a nested mount read-only too; the host stays writable", async () => {
  const src = join(dir, "rro-src");
  await mkdir(join(src, "sub"), { recursive: true });
  execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", join(src, "sub")]);
  try {
    const clone = join(containerMountsDir(state, "c2"), "m0");
    await bindClone(HELPER, src, clone, { mode: "rro" });
    for (const p of [join(clone, "top"), join(clone, "sub", "nested")]) {
      await assert.rejects(writeFile(p, "x"), (e) => (e as NodeJS.ErrnoException).code === "EROFS", p);
    }
    await writeFile(join(src, "sub", "host"), "x");
    assert.equal(await readFile(join(clone, "sub", "host"), "utf8"), "x");
    await removeUnder(HELPER, containerMountsDir(state, "c2"));
  } finally {
    execFileSync("umount", [join(src, "sub")]);
  }
});

test("refusals: a bad mapping is INVALID_ARGUMENT and leaves no pin; a tree with a filesystem that cannot be idmapped is FAILED_PRECONDITION and leaves no clone", async () => {
  await assert.rejects(createPodUserns(HELPER, state, "pod2", { ...U, uids: { containerId: 0, hostId: 4294967295, length: 2 } }, true),
    (e) => e instanceof BerthError && e.code === Code.INVALID_ARGUMENT && /passes 2\^32/.test(e.message));
  assert.deepEqual(await mountsUnder(state), []);
  const pins = await createPodUserns(HELPER, state, "pod3", U, false);
  assert.equal(pins.netnsPath, "");
  const src = join(dir, "with-proc");
  await mkdir(join(src, "proc"), { recursive: true });
  execFileSync("mount", ["-t", "proc", "proc", join(src, "proc")]);
  try {
    const target = join(containerMountsDir(state, "c3"), "m0");
    await assert.rejects(bindClone(HELPER, src, target, { userns: pins.usernsPath, mode: "rw" }),
      (e) => e instanceof BerthError && e.code === Code.FAILED_PRECONDITION && /does not support idmapped mounts/.test(e.message));
    assert.deepEqual((await mountsUnder(state)).filter((m) => m.includes("c3")), []);
  } finally {
    execFileSync("umount", [join(src, "proc")]);
  }
  // The start-up sweep removes what no known pod or container owns.
  const removed = await sweepPrepared(HELPER, state, { pods: new Set(), containers: new Set() });
  assert.ok(removed.some((d) => d.endsWith("pods/pod3")), removed.join(", "));
  assert.deepEqual(await mountsUnder(state), []);
});

test("the start-up sweep also removes image volume leftovers (an idmapped layer clone still mounted) of containers no record names", async () => {
  const leftover = join(state, "userns", "volumes", "c9", "0.layers");
  const kept = join(state, "userns", "volumes", "c10", "0");
  for (const d of [leftover, kept]) {
    await mkdir(d, { recursive: true });
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", d]);
  }
  try {
    const removed = await sweepPrepared(HELPER, state, { pods: new Set(), containers: new Set(["c10"]) });
    assert.ok(removed.includes(join(state, "userns", "volumes", "c9")), removed.join(", "));
    assert.deepEqual(await mountsUnder(state), [kept], "only the kept container's volume is still mounted");
    await assert.rejects(stat(join(state, "userns", "volumes", "c9")), { code: "ENOENT" });
  } finally {
    await removeUnder(HELPER, join(state, "userns", "volumes", "c10"));
  }
  assert.deepEqual(await mountsUnder(state), []);
});

test("mountsUnder and removeUnder see mounts under a path given through a symlink (state = /var/run/... with /var/run -> /run)", async () => {
  const link = join(dir, "state-link");
  await symlink(state, link);
  const m = join(state, "userns", "containers", "c11", "m0");
  await mkdir(m, { recursive: true });
  execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", m]);
  try {
    assert.deepEqual(await mountsUnder(join(link, "userns", "containers", "c11")), [m]);
    await removeUnder(HELPER, join(link, "userns", "containers", "c11"));
    assert.deepEqual(await mountsUnder(state), []);
    await assert.rejects(stat(join(state, "userns", "containers", "c11")), { code: "ENOENT" });
  } finally {
    for (const x of await mountsUnder(m)) execFileSync("umount", ["-l", x]);
    await rm(link, { force: true });
  }
});
