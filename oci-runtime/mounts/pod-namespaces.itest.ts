// berth-mount `pod` through createPodNamespaces with the real helper and kernel: a pod's /dev/shm,
// network namespace (lo up) and IPC/UTS namespaces from one exec; a failure at any step (a sysctl the
// kernel refuses, a name the helper refuses) leaves nothing mounted and no pin file.
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BerthError, Code } from "../foundation/errdefs.ts";
import { createPodNamespaces, mountsUnder, unpinPodNamespaces } from "./mount-helper.ts";

const HELPER = "/usr/local/libexec/berth/berth-mount";
let dir: string;
const nsenter = (args: string[]) => execFileSync("nsenter", args, { encoding: "utf8" }).trim();
const mountLine = (path: string) => execFileSync("grep", [` ${path} `, "/proc/self/mountinfo"], { encoding: "utf8" }).trim();

before(async () => { dir = await mkdtemp(join(tmpdir(), "berth-podns-itest-")); });
after(async () => {
  for (const m of await mountsUnder(dir)) execFileSync("umount", ["-l", m]);
  await rm(dir, { recursive: true, force: true });
});

async function podDir(name: string) {
  const pod = join(dir, name);
  await mkdir(join(pod, "shm"), { recursive: true, mode: 0o700 });
  await writeFile(join(pod, "net"), "");
  return { pod, shm: join(pod, "shm"), net: join(pod, "net"), ipc: join(pod, "ns", "ipc"), uts: join(pod, "ns", "uts") };
}

test("one call: shm tmpfs (size, nosuid/nodev/noexec, 1777), netns with lo up and the net sysctls, ipc/uts with hostname and sysctls", async () => {
  const p = await podDir("all");
  await createPodNamespaces(HELPER, {
    shmDir: p.shm, shmBytes: 8 << 20, netnsPin: p.net,
    pins: { ipcPath: p.ipc, utsPath: p.uts, hostname: "one-call", sysctls: { "kernel.shmmni": "4003", "net.ipv4.ip_unprivileged_port_start": "83" } },
  });
  const shm = mountLine(p.shm).split(" ");
  assert.equal(shm[shm.indexOf("-") + 1], "tmpfs");
  for (const o of ["nosuid", "nodev", "noexec"]) assert.ok(shm[5]!.split(",").includes(o), shm[5]);
  assert.ok(shm.at(-1)!.split(",").includes("size=8192k"), shm.at(-1));
  assert.equal((await stat(p.shm)).mode & 0o7777, 0o1777);
  assert.match(nsenter([`--net=${p.net}`, "ip", "-o", "link", "show", "lo"]), /<LOOPBACK,UP,LOWER_UP>/);
  assert.notEqual(nsenter([`--net=${p.net}`, "readlink", "/proc/self/ns/net"]), execFileSync("readlink", ["/proc/self/ns/net"], { encoding: "utf8" }).trim());
  assert.equal(nsenter([`--net=${p.net}`, "cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"]), "83");
  assert.equal(nsenter([`--uts=${p.uts}`, "hostname"]), "one-call");
  assert.equal(nsenter([`--ipc=${p.ipc}`, "cat", "/proc/sys/kernel/shmmni"]), "4003");
  assert.deepEqual((await mountsUnder(p.pod)).sort(), [p.net, p.ipc, p.uts, p.shm].sort());
  for (const m of [p.shm, p.net]) execFileSync("umount", [m]);
  await unpinPodNamespaces(HELPER, [p.ipc, p.uts]);
  assert.deepEqual(await mountsUnder(p.pod), []);
});

test("parts can be left out: shm and ipc only (a host-network pod), netns only", async () => {
  const a = await podDir("host");
  await createPodNamespaces(HELPER, { shmDir: a.shm, shmBytes: 1 << 20, netnsPin: "", pins: { ipcPath: a.ipc, utsPath: "", hostname: "", sysctls: {} } });
  assert.deepEqual((await mountsUnder(a.pod)).sort(), [a.ipc, a.shm].sort());
  const b = await podDir("netonly");
  await createPodNamespaces(HELPER, { shmDir: "", shmBytes: 0, netnsPin: b.net });
  assert.deepEqual(await mountsUnder(b.pod), [b.net]);
});

test("a failure after the shm and netns are mounted unmounts them and removes the pin files; the kernel's refusal names the sysctl", async () => {
  const p = await podDir("fail");
  await assert.rejects(createPodNamespaces(HELPER, {
    shmDir: p.shm, shmBytes: 1 << 20, netnsPin: p.net,
    pins: { ipcPath: p.ipc, utsPath: p.uts, hostname: "x", sysctls: { "kernel.shmmni": "not-a-number" } },
  }), (e: unknown) => e instanceof BerthError && e.code === Code.INVALID_ARGUMENT && /kernel refused kernel\.shmmni = "not-a-number"/.test(e.message));
  assert.deepEqual(await mountsUnder(p.pod), [], "nothing left mounted");
  assert.deepEqual(await readdir(join(p.pod, "ns")), [], "no pin file left");
  await assert.rejects(createPodNamespaces(HELPER, {
    shmDir: p.shm, shmBytes: 1 << 20, netnsPin: p.net,
    pins: { ipcPath: p.ipc, utsPath: p.uts, hostname: "x", sysctls: { "kernel.core_pattern": "|/tmp/x" } },
  }), (e: unknown) => e instanceof BerthError && /sysctl kernel\.core_pattern is not one a pod may set/.test(e.message));
  assert.deepEqual(await mountsUnder(p.pod), [], "nothing left mounted");
});

test("bad sizes and net sysctls without a netns are refused before anything is made", async () => {
  const p = await podDir("refuse");
  await assert.rejects(createPodNamespaces(HELPER, { shmDir: p.shm, shmBytes: 1e16, netnsPin: "" }), (e: unknown) => e instanceof BerthError && e.code === Code.INVALID_ARGUMENT && /invalid shm size 10000000000000000 \(1 to 1000000000000000 bytes\)/.test(e.message));
  await assert.rejects(createPodNamespaces(HELPER, { shmDir: "", shmBytes: 0, netnsPin: "", pins: { ipcPath: p.ipc, utsPath: "", hostname: "", sysctls: { "net.ipv4.ip_forward": "1" } } }),
    (e: unknown) => e instanceof BerthError && e.code === Code.INVALID_ARGUMENT && /net\.\* sysctls need the pod's own network namespace/.test(e.message));
  assert.deepEqual(await mountsUnder(p.pod), []);
});
