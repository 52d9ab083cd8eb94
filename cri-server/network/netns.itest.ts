// Real network namespaces pinned under a temp state dir (needs root).

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, stat, writeFile, readlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BerthError, Code } from "../../oci-runtime/foundation/errdefs.ts";
import { findMount } from "../../oci-runtime/foundation/mountinfo.ts";
import { createNetns, isNetns, listNetns, netnsDir, nsenterArgs, removeNetns, unmountNetnsDir } from "./netns.ts";
import { runCommand } from "../../oci-runtime/foundation/run-command.ts";
import { defaultConfig } from "../config.ts";
import { mountHelperPath } from "../../oci-runtime/mounts/mount-helper.ts";

const helper = mountHelperPath(defaultConfig().runtime.io_helper);

const stateDir = await mkdtemp(join(tmpdir(), "berth-netns-it-"));
after(async () => {
  for (const p of await listNetns(stateDir)) await removeNetns(p).catch(() => {});
  await unmountNetnsDir(stateDir).catch(() => {});
  await rm(stateDir, { recursive: true, force: true });
});

const inNs = (path: string, argv: string[]) => {
  const [bin, ...args] = nsenterArgs(path, argv);
  return runCommand(bin!, args);
};

// Both ways of making one: `unshare --net=PIN ip link set lo up` ("unshare-ip"), and berth-mount netns (what berthd uses).
for (const way of [{ name: "unshare-ip", helper: undefined }, { name: "berth-mount", helper }]) {
  const opts = { stateDir, ...(way.helper ? { helper: way.helper } : {}) };
test(`${way.name}: creates a pinned netns with lo up, distinct from the host's`, async () => {
  const path = await createNetns(opts, `pod-a-${way.name}`);
  assert.equal(path, join(netnsDir(stateDir), `pod-a-${way.name}`));
  assert.equal(await isNetns(path), true);
  assert.equal((await findMount(path))?.fsType, "nsfs");
  const lo = await inNs(path, ["ip", "-o", "link", "show", "lo"]);
  assert.equal(lo.code, 0, lo.stderr);
  assert.match(lo.stdout, /<LOOPBACK,UP,LOWER_UP>/);
  const links = await inNs(path, ["ip", "-o", "link", "show"]);
  assert.deepEqual(links.stdout.trim().split("\n").map((l) => l.split(": ")[1]), ["lo"]);
  const ino = await inNs(path, ["readlink", "/proc/self/ns/net"]);
  assert.notEqual(ino.stdout.trim(), await readlink("/proc/self/ns/net"));
  assert.deepEqual(await listNetns(stateDir), [path]);
  await removeNetns(path);
});

test(`${way.name}: a create that fails leaves no pin file and nothing mounted`, async () => {
    // The program that makes it fails (for unshare: after it has pinned the namespace).
    const name = `pod-fail-${way.name}`;
    const failing = { ...opts, ...(way.helper ? { helper: "/bin/false" } : { ip: "/bin/false" }) };
    await assert.rejects(createNetns(failing, name), (e: unknown) => e instanceof BerthError && e.code === Code.INTERNAL && e.message.includes(join(netnsDir(stateDir), name)));
    await assert.rejects(stat(join(netnsDir(stateDir), name)), { code: "ENOENT" });
    assert.equal(await findMount(join(netnsDir(stateDir), name)), undefined);
  });
}

test("the netns dir is its own shared mount point", async () => {
  const path = await createNetns({ stateDir }, "pod-prop");
  try {
    const m = await findMount(netnsDir(stateDir));
    assert.ok(m, "netns dir is a mount point");
    assert.ok(m.optional.some((o) => o.startsWith("shared:")), `propagation: ${m.optional.join(",")}`);
  } finally {
    await removeNetns(path);
  }
});

test("a second create with the same name is ALREADY_EXISTS and leaves the first intact", async () => {
  const path = await createNetns({ stateDir }, "pod-dup");
  try {
    await assert.rejects(createNetns({ stateDir }, "pod-dup"), (e: unknown) => e instanceof BerthError && e.code === Code.ALREADY_EXISTS && e.message.includes(path));
    assert.equal(await isNetns(path), true);
  } finally {
    await removeNetns(path);
  }
});

test("remove unmounts and unlinks, and is idempotent (gone, or a stale unmounted file)", async () => {
  const path = await createNetns({ stateDir }, "pod-rm");
  await removeNetns(path);
  await assert.rejects(stat(path), { code: "ENOENT" });
  assert.equal(await findMount(path), undefined);
  await removeNetns(path);
  await writeFile(path, "");
  await removeNetns(path);
  await assert.rejects(stat(path), { code: "ENOENT" });
  assert.deepEqual(await listNetns(stateDir), []);
});

test("bad names are INVALID_ARGUMENT", async () => {
  await assert.rejects(createNetns({ stateDir }, "../x"), (e: unknown) => e instanceof BerthError && e.code === Code.INVALID_ARGUMENT);
  await assert.rejects(createNetns({ stateDir }, ""), (e: unknown) => e instanceof BerthError && e.code === Code.INVALID_ARGUMENT);
});

test("many concurrent creates and removes leave nothing", async () => {
  const names = Array.from({ length: 10 }, (_, i) => `pod-c${i}`);
  const paths = await Promise.all(names.map((n) => createNetns({ stateDir, helper }, n)));
  assert.equal(new Set(paths).size, 10);
  for (const p of paths) assert.equal(await isNetns(p), true);
  const inodes = await Promise.all(paths.map(async (p) => (await inNs(p, ["readlink", "/proc/self/ns/net"])).stdout.trim()));
  assert.equal(new Set(inodes).size, 10, "ten distinct namespaces");
  await Promise.all(paths.map((p) => removeNetns(p)));
  assert.deepEqual(await listNetns(stateDir), []);
  const leftovers = (await runCommand("grep", ["-c", stateDir, "/proc/self/mountinfo"])).stdout.trim();
  assert.equal(leftovers, "1", "only the netns dir itself stays mounted");
});
