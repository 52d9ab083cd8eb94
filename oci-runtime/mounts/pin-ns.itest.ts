// berth-mount pin-ns with the real helper and kernel: a pod's IPC and UTS namespaces without a
// process to hold them (the hostname and sysctls set inside, net.* in the pod's netns), owned by the
// pod's user namespace when it has one; the refusals (hostile sysctl names, sizes) and the cleanup.
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { chmod, mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BerthError, Code } from "../foundation/errdefs.ts";
import { checkPinInput, createPodUserns, mountsUnder, pinPodNamespaces, PIN_MAX_SYSCTLS, removeUnder, unpinPodNamespaces } from "./mount-helper.ts";

const HELPER = "/usr/local/libexec/berth/berth-mount";
let dir: string;

const nsenter = (args: string[]) => execFileSync("nsenter", args, { encoding: "utf8" }).trim();

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "berth-pinns-itest-"));
  await chmod(dir, 0o711);
});

after(async () => {
  for (const m of await mountsUnder(dir)) execFileSync("umount", ["-l", m]);
  await rm(dir, { recursive: true, force: true });
});

test("pins new IPC and UTS namespaces with the hostname and sysctls set inside; unpin removes them", async () => {
  const pod = join(dir, "plain");
  await mkdir(pod, { mode: 0o700 });
  const netns = join(pod, "net");
  await writeFile(netns, "");
  execFileSync("unshare", [`--net=${netns}`, "true"]);
  const ipc = join(pod, "ns", "ipc");
  const uts = join(pod, "ns", "uts");
  await pinPodNamespaces(HELPER, {
    ipcPath: ipc, utsPath: uts, netnsPath: netns, hostname: "pinned",
    sysctls: { "kernel.shmmni": "4002", "kernel.sem": "250 32000 32 200", "net.ipv4.ip_unprivileged_port_start": "82", "kernel.domainname": "pod.example" },
  });
  assert.equal(nsenter([`--uts=${uts}`, "hostname"]), "pinned");
  assert.equal(nsenter([`--uts=${uts}`, "domainname"]), "pod.example");
  assert.equal(nsenter([`--ipc=${ipc}`, "cat", "/proc/sys/kernel/shmmni"]), "4002");
  assert.equal(nsenter([`--ipc=${ipc}`, "cat", "/proc/sys/kernel/sem"]).replace(/\s+/g, " "), "250 32000 32 200");
  assert.equal(nsenter([`--net=${netns}`, "cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"]), "82");
  assert.notEqual(execFileSync("cat", ["/proc/sys/kernel/shmmni"], { encoding: "utf8" }).trim(), "4002", "the host's value is untouched");
  assert.equal((await mountsUnder(join(pod, "ns"))).length, 2);
  await unpinPodNamespaces(HELPER, [ipc, uts, ""]);
  await unpinPodNamespaces(HELPER, [ipc, uts]); // idempotent
  assert.deepEqual(await mountsUnder(join(pod, "ns")), []);
  assert.deepEqual(await readdir(join(pod, "ns")), []);
  execFileSync("umount", [netns]);
});

test("with the pod's user namespace: the new namespaces are owned by it, its root may set IPC sysctls", async () => {
  const state = join(dir, "state");
  await mkdir(state, { mode: 0o711, recursive: true });
  const U = { uids: { containerId: 0, hostId: 610000, length: 65536 }, gids: { containerId: 0, hostId: 710000, length: 65536 } };
  const pins = await createPodUserns(HELPER, state, "p1", U, true);
  const pod = join(dir, "userns-pod");
  await mkdir(pod, { mode: 0o700 });
  const [ipc, uts] = [join(pod, "ns", "ipc"), join(pod, "ns", "uts")];
  try {
    await pinPodNamespaces(HELPER, {
      ipcPath: ipc, utsPath: uts, usernsPath: pins.usernsPath, netnsPath: pins.netnsPath, hostname: "owned",
      sysctls: { "kernel.msgmax": "9001", "net.ipv4.ip_unprivileged_port_start": "83" },
    });
    // Entering the user namespace first, as runc does for the pod's containers.
    assert.equal(nsenter([`--user=${pins.usernsPath}`, `--uts=${uts}`, "hostname"]), "owned");
    assert.equal(nsenter([`--user=${pins.usernsPath}`, `--ipc=${ipc}`, "cat", "/proc/sys/kernel/msgmax"]), "9001");
    assert.equal(nsenter([`--user=${pins.usernsPath}`, `--net=${pins.netnsPath}`, "cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"]), "83");
    // The pod's root can change the IPC namespace's sysctls: its user namespace owns it.
    assert.equal(spawnSync("nsenter", [`--user=${pins.usernsPath}`, "-S", "0", "-G", "0", `--ipc=${ipc}`, "sh", "-c", "echo 9002 > /proc/sys/kernel/msgmax"]).status, 0);
    assert.equal(nsenter([`--ipc=${ipc}`, "cat", "/proc/sys/kernel/msgmax"]), "9002");
  } finally {
    await unpinPodNamespaces(HELPER, [ipc, uts]);
    await removeUnder(HELPER, join(state, "userns", "pods", "p1"));
  }
  assert.deepEqual(await mountsUnder(pod), []);
});

test("hostile or oversized input is refused before the helper runs, and by the helper itself", async () => {
  const bad = (sysctls: Record<string, string>, hostname = "h") => () => checkPinInput({ hostname, sysctls });
  const invalid = (re: RegExp) => (e: unknown) => e instanceof BerthError && e.code === Code.INVALID_ARGUMENT && re.test(e.message);
  // "/" stands for a "." inside a component: "//" would be "..", reaching kernel.core_pattern from net.
  assert.throws(bad({ "net.//.//.kernel.core_pattern": "|/bin/sh" }), invalid(/names no sysctl file/));
  assert.throws(bad({ "net.ipv4./.x": "1" }), invalid(/names no sysctl file/));
  assert.throws(bad({ "kernel.shmmni": "1".repeat(4097) }), invalid(/longer than 4096 bytes/));
  assert.throws(bad(Object.fromEntries(Array.from({ length: PIN_MAX_SYSCTLS + 1 }, (_, i) => [`net.ipv4.conf.x${i}.forwarding`, "1"]))), invalid(/more than the limit of 256/));
  assert.throws(bad({}, "h".repeat(65)), invalid(/longer than 64 bytes/));
  assert.throws(bad({ "kernel.hostname": "h".repeat(65) }), invalid(/kernel\.hostname .* longer than 64 bytes/));
  // The helper checks the same on its own (it is the last line before /proc/sys).
  const pin = join(dir, "refused");
  await writeFile(pin, "");
  for (const args of [
    ["net.//.//.kernel.core_pattern", "x"],
    ["vm.swappiness", "10"],
    ["kernel.core_pattern", "x"],
    ["net.ipv4.ip_forward"], // no value
  ]) {
    const r = spawnSync(HELPER, ["pin-ns", pin, "-", "-", "-", "", ...args], { encoding: "utf8" });
    assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
  }
  const r = spawnSync(HELPER, ["pin-ns", pin, "-", "-", "-", "", "net.ipv4.ip_forward", "1"], { encoding: "utf8" });
  assert.equal(r.status, 2, "net sysctls need the pod's netns");
  assert.match(r.stderr, /net sysctls need the pod's network namespace/);
  // One sysctl pair too many for `pod` (256 at most) is refused before anything is made.
  const many = Array.from({ length: 257 }, (_, i) => [`kernel.shmmni`, String(4096 + i)]).flat();
  const p = spawnSync(HELPER, ["pod", "-", "-", "-", pin, "-", "", ...many], { encoding: "utf8" });
  assert.equal(p.status, 2, p.stderr);
  const odd = spawnSync(HELPER, ["pod", "-", "-", "-", pin, "-", "", ...many.slice(0, 513)], { encoding: "utf8" });
  assert.equal(odd.status, 2, odd.stderr);
  assert.deepEqual(await mountsUnder(dir), []);
});

test("a pod whose hostname is \"-\" gets that hostname, never the node's (\"-\" is no marker for a hostname)", async () => {
  const pod = join(dir, "dash");
  await mkdir(pod, { mode: 0o700 });
  const uts = join(pod, "ns", "uts");
  await pinPodNamespaces(HELPER, { ipcPath: "", utsPath: uts, hostname: "-", sysctls: {} });
  assert.equal(nsenter([`--uts=${uts}`, "hostname"]), "-");
  await unpinPodNamespaces(HELPER, [uts]);
  assert.deepEqual(await mountsUnder(pod), []);
});

test("a failure inside the helper (a value the kernel refuses) leaves nothing mounted or created", async () => {
  const pod = join(dir, "failing");
  await mkdir(pod, { mode: 0o700 });
  const [ipc, uts] = [join(pod, "ns", "ipc"), join(pod, "ns", "uts")];
  await assert.rejects(pinPodNamespaces(HELPER, { ipcPath: ipc, utsPath: uts, hostname: "x", sysctls: { "kernel.shmmni": "not-a-number" } }),
    (e) => e instanceof BerthError && e.code === Code.INVALID_ARGUMENT && /kernel\.shmmni = "not-a-number"/.test(e.message));
  assert.deepEqual(await mountsUnder(pod), []);
  assert.ok(!existsSync(ipc) && !existsSync(uts), "the pin files are deleted");
});
