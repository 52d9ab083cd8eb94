import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureDir, fixDirModes, traversePath } from "./dir-modes.ts";

const mode = (p: string) => statSync(p).mode & 0o7777;

test("fixDirModes: top dirs, their entries and known sub-dirs lose group/other access; layer and pod file contents are left alone", () => {
  const dir = mkdtempSync(join(tmpdir(), "berth-modes-"));
  try {
    const root = join(dir, "root"), state = join(dir, "state"), socket = join(state, "berth.sock");
    const open = [
      root, join(root, "content"), join(root, "content", "blobs"), join(root, "content", "blobs", "sha256"), join(root, "snapshots"),
      join(root, "snapshots", "c".repeat(64)), join(root, "snapshots", "containers"), join(root, "snapshots", "containers", "k"),
      join(root, "containers"), state, join(state, "containers"), join(state, "containers", "id1"), join(state, "sandboxes"), join(state, "sandboxes", "p1"),
    ];
    const keep = [join(root, "snapshots", "c".repeat(64), "fs"), join(root, "snapshots", "containers", "k", "upper"), join(state, "infra-rootfs-like"), join(state, "userns", "pods")];
    for (const d of [...open, ...keep]) { mkdirSync(d, { recursive: true }); chmodSync(d, 0o755); }
    writeFileSync(join(root, "containers", "id1.json"), "{}", { mode: 0o644 });
    writeFileSync(join(state, "containers", "id1", "config.json"), "{}", { mode: 0o644 });
    writeFileSync(join(state, "sandboxes", "p1", "hosts"), "", { mode: 0o644 });
    writeFileSync(socket, "");
    chmodSync(socket, 0o660);
    symlinkSync("/etc", join(state, "containers", "link"));
    const fixes = fixDirModes({ root, state, socket });
    assert.equal(mode(state), 0o711, "state leads to the socket");
    for (const d of open.filter((d) => d !== state)) assert.equal(mode(d), 0o700, d);
    assert.equal(mode(join(root, "containers", "id1.json")), 0o600);
    assert.equal(mode(join(state, "containers", "id1", "config.json")), 0o600);
    assert.equal(mode(socket), 0o660, "the socket keeps its group access");
    assert.equal(mode(join(state, "sandboxes", "p1", "hosts")), 0o644, "pod files are bind-mounted into containers");
    assert.equal(mode(keep[0]!), 0o755, "a layer's root");
    assert.equal(mode(keep[1]!), 0o755, "a container's upper dir");
    assert.equal(mode(join(state, "userns")), 0o711, "userns: search-only for user-namespaced roots");
    assert.equal(mode(keep[3]!), 0o755, "userns is not walked");
    assert.equal(mode("/etc"), 0o755, "symlinks are not followed");
    assert.equal(fixes.length, open.length + 2 + 2 /* infra-rootfs-like and userns are direct children of state */);
    assert.deepEqual(fixDirModes({ root, state, socket }), [], "a second run has nothing to fix");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("traversePath: state, state/userns and the directories down to the socket; nothing of root unless the socket is there", () => {
  const fixed = ["/run/berth", "/run/berth/userns"];
  assert.deepEqual([...traversePath({ root: "/var/lib/berth", state: "/run/berth", socket: "/run/berth/berth.sock" })], fixed);
  assert.deepEqual([...traversePath({ root: "/var/lib/berth", state: "/run/berth", socket: "/run/berth/sock/cri.sock" })], [...fixed, "/run/berth/sock"]);
  assert.deepEqual([...traversePath({ root: "/var/lib/berth", state: "/run/berth", socket: "/run/cri.sock" })], fixed);
  assert.deepEqual([...traversePath({ root: "/var/lib/berth", state: "/run/berth", socket: "/run/berth-other/cri.sock" })], fixed);
  assert.deepEqual([...traversePath({ root: "/var/lib/berth", state: "/run/berth", socket: "/var/lib/berth/s/cri.sock" })], [...fixed, "/var/lib/berth", "/var/lib/berth/s"]);
});

test("ensureDir sets the mode whatever the umask and whatever was there", async () => {
  const dir = mkdtempSync(join(tmpdir(), "berth-modes-"));
  const old = process.umask(0o000);
  try {
    await ensureDir(join(dir, "a"), 0o700);
    assert.equal(mode(join(dir, "a")), 0o700);
    chmodSync(join(dir, "a"), 0o777);
    await ensureDir(join(dir, "a"), 0o700);
    assert.equal(mode(join(dir, "a")), 0o700);
  } finally {
    process.umask(old);
    rmSync(dir, { recursive: true, force: true });
  }
});
