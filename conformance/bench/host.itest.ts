// Host probes against real processes and mounts (the mount part needs root).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, mkdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findProcesses, heldMemfdBytes, mountsUnder, rssBytes, unmountUnder } from "./host.ts";

test("findProcesses finds a process by name and argument; rssBytes measures it", async () => {
  const marker = `${process.pid}${Date.now() % 100000}`;
  const child = spawn("sleep", [`${marker}.5`]);
  try {
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(findProcesses("sleep", marker), [child.pid]);
    assert.deepEqual(findProcesses("conmon", marker), []);
    assert.ok(rssBytes(child.pid!) > 0);
  } finally {
    child.kill("SIGKILL");
    await once(child, "exit");
  }
  assert.equal(rssBytes(child.pid!), 0);
});

test("unmountUnder removes nested mounts deepest first", { skip: process.getuid?.() !== 0 && "needs root" }, async () => {
  const dir = await mkdtemp(join(tmpdir(), "berth-npmbench-host-"));
  try {
    await mkdir(join(dir, "a"));
    execFileSync("mount", ["-t", "tmpfs", "tmpfs", join(dir, "a")]);
    await mkdir(join(dir, "a", "b"));
    execFileSync("mount", ["-t", "tmpfs", "tmpfs", join(dir, "a", "b")]);
    assert.deepEqual(mountsUnder(dir), [join(dir, "a", "b"), join(dir, "a")]);
    unmountUnder(dir);
    assert.deepEqual(mountsUnder(dir), []);
  } finally {
    unmountUnder(dir);
    await rm(dir, { recursive: true, force: true });
  }
});

test("heldMemfdBytes counts the memfds a process holds open, each once", { skip: process.getuid?.() !== 0 && "needs root" }, async () => {
  const { sealBinary } = await import("../../oci-runtime/runtime/sealed-binary.ts");
  const before = heldMemfdBytes([process.pid]);
  const s = await sealBinary("/usr/local/libexec/berth/berth-mount", "/bin/true");
  try {
    assert.equal(heldMemfdBytes([process.pid]) - before, s.size);
    assert.equal(heldMemfdBytes([process.pid, process.pid]) - before, s.size, "the same memfd twice counts once");
  } finally {
    await s.handle.close();
  }
  assert.equal(heldMemfdBytes([process.pid]), before);
});
