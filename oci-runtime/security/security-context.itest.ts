// Real containers (runc + busybox-static) checking what critest's Security Context specs check:
// seccomp (RuntimeDefault, Unconfined, Localhost in both formats, privileged ignoring it), capabilities
// in /proc/self/status, privileged, no_new_privs, masked and read-only paths, read-only rootfs.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { SpecOpt } from "../bundle-spec/types.ts";
import { withSecurityContext, type ContainerSecurityInput } from "./security-context.ts";
import { capabilitiesFromMask } from "./capability-names.ts";
import { Bundle, haveRunc } from "../../conformance/lib/runc-bundle.ts";

const skip = haveRunc() ? false : "needs root, runc and busybox-static";
let b: Bundle;
let profiles: string;

before(() => {
  if (skip) return;
  b = new Bundle();
  profiles = join(b.dir, "profiles");
  mkdirSync(profiles);
  // critest's two Localhost profiles (OCI format)
  writeFileSync(join(profiles, "block-hostname.json"), JSON.stringify({ defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["sethostname"], action: "SCMP_ACT_ERRNO" }] }));
  writeFileSync(join(profiles, "block-chmod.json"), JSON.stringify({ defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["chmod", "fchmodat"], action: "SCMP_ACT_ERRNO" }] }));
  // the same hostname block in Docker/containerd format
  writeFileSync(join(profiles, "block-hostname-docker.json"), JSON.stringify({
    defaultAction: "SCMP_ACT_ALLOW",
    archMap: [{ architecture: "SCMP_ARCH_X86_64", subArchitectures: ["SCMP_ARCH_X86", "SCMP_ARCH_X32"] },
      { architecture: "SCMP_ARCH_AARCH64", subArchitectures: ["SCMP_ARCH_ARM"] }],
    syscalls: [
      { name: "sethostname", action: "SCMP_ACT_ERRNO", errnoRet: 1, comment: "blocked even with CAP_SYS_ADMIN" },
      { names: ["setdomainname"], action: "SCMP_ACT_ERRNO", includes: { caps: ["CAP_SYS_ADMIN"] } },
    ],
  }));
});
after(async () => { if (b) await b.cleanup(); });

const sec = (input: ContainerSecurityInput): SpecOpt<unknown> => withSecurityContext({ podPrivileged: input.privileged ?? false, ...input });
const run = (cmd: string, input: ContainerSecurityInput = {}, extra: SpecOpt<unknown>[] = []) => b.run(["sh", "-c", cmd], [sec(input), ...extra]);
const statusField = (out: string, field: string): string => new RegExp(`^${field}:\\s*(\\S+)`, "m").exec(out)?.[1] ?? "";

const SYS_ADMIN = { addCapabilities: ["SYS_ADMIN"] };
const HOSTNAME = "hostname ANewHostName && hostname";

test("RuntimeDefault: filter on (Seccomp: 2), sethostname refused without CAP_SYS_ADMIN", { skip }, async () => {
  const r = await run("grep Seccomp: /proc/self/status; hostname ANewHostName", { seccomp: {} });
  assert.equal(statusField(r.stdout, "Seccomp"), "2", r.stdout);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /Operation not permitted/);
});

test("RuntimeDefault re-allows sethostname with CAP_SYS_ADMIN (as Docker's and containerd's default)", { skip }, async () => {
  const r = await run(HOSTNAME, { seccomp: { profileType: "RuntimeDefault" }, capabilities: SYS_ADMIN });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), "ANewHostName");
});

test("RuntimeDefault: the clone flag rule leaves ordinary fork and exec working", { skip }, async () => {
  const r = await run("echo $(echo nested) && /bin/sh -c 'echo child'", { seccomp: {} });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "nested\nchild\n");
});

test("nil profile and Unconfined: no filter (Seccomp: 0); Unconfined + SYS_ADMIN may set the hostname", { skip }, async () => {
  const nil = await run("grep Seccomp: /proc/self/status");
  assert.equal(statusField(nil.stdout, "Seccomp"), "0");
  const r = await run(`grep Seccomp: /proc/self/status; ${HOSTNAME}`, { seccomp: { profileType: "Unconfined" }, capabilities: SYS_ADMIN });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(statusField(r.stdout, "Seccomp"), "0");
  assert.match(r.stdout, /ANewHostName/);
});

test("Localhost (OCI format) blocks sethostname even with CAP_SYS_ADMIN", { skip }, async () => {
  const r = await run(HOSTNAME, { seccomp: { profileType: "Localhost", localhostRef: join(profiles, "block-hostname.json") }, capabilities: SYS_ADMIN });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /Operation not permitted/);
});

test("Localhost (Docker format) blocks sethostname even with CAP_SYS_ADMIN", { skip }, async () => {
  const r = await run(HOSTNAME, { seccompProfilePath: `localhost/${join(profiles, "block-hostname-docker.json")}`, capabilities: SYS_ADMIN });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /Operation not permitted/);
  const ok = await run("echo still-runs", { seccomp: { profileType: 2, localhostRef: join(profiles, "block-hostname-docker.json") } });
  assert.equal(ok.stdout, "still-runs\n");
});

test("Localhost block-chmod: chmod fails with Operation not permitted (critest localhost profile)", { skip }, async () => {
  const r = await run("chmod 400 /", { seccomp: { profileType: 2, localhostRef: join(profiles, "block-chmod.json") } });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /Operation not permitted/);
});

test("privileged ignores a Localhost profile: sethostname works", { skip }, async () => {
  const r = await run(`grep Seccomp: /proc/self/status; ${HOSTNAME}`, { privileged: true, seccomp: { profileType: 2, localhostRef: join(profiles, "block-hostname.json") } });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(statusField(r.stdout, "Seccomp"), "0");
  assert.match(r.stdout, /ANewHostName/);
});

test("privileged: every host capability, host devices, writable sysfs, unmasked /proc", { skip }, async () => {
  const hostDevs = execFileSync("sh", ["-c", "ls /dev | wc -l"]).toString().trim();
  const r = await run("grep CapEff: /proc/self/status; ls /dev | wc -l; grep ' /sys ' /proc/mounts; ls -d /dev/kmsg; wc -c < /proc/keys", { privileged: true });
  assert.equal(r.code, 0, r.stderr);
  const hostEff = /^CapBnd:\s*(\S+)/m.exec(execFileSync("cat", ["/proc/self/status"]).toString())![1]!;
  assert.equal(statusField(r.stdout, "CapEff"), hostEff);
  const lines = r.stdout.trim().split("\n");
  assert.ok(Number(lines[1]) > 10, `container /dev has ${lines[1]} entries, host ${hostDevs}`);
  assert.match(lines[2]!, /sysfs \/sys sysfs rw,/);
  assert.equal(lines[3], "/dev/kmsg");
  assert.notEqual(lines[4], "0", "/proc/keys is not masked");
  const plain = await run("ls /dev/kmsg 2>&1; grep ' /sys ' /proc/mounts; wc -c < /proc/keys");
  assert.match(plain.stdout, /No such file/);
  assert.match(plain.stdout, /sysfs \/sys sysfs ro,/);
  assert.match(plain.stdout, /^0$/m, "/proc/keys masked by default");
});

test("privileged container in a non-privileged pod is refused", { skip }, async () => {
  await assert.rejects(b.run(["true"], [withSecurityContext({ privileged: true, podPrivileged: false })]), /non-privileged pod/);
});

test("capabilities: add NET_ADMIN and drop NET_RAW show in CapEff; ping fails without NET_RAW", { skip }, async () => {
  const added = await run("grep CapEff: /proc/self/status", { capabilities: { addCapabilities: ["NET_ADMIN"] } });
  assert.ok(capabilitiesFromMask(statusField(added.stdout, "CapEff")).includes("CAP_NET_ADMIN"), added.stdout);
  const plain = await run("grep CapEff: /proc/self/status");
  assert.deepEqual(capabilitiesFromMask(statusField(plain.stdout, "CapEff")).includes("CAP_NET_ADMIN"), false);
  const dropped = await run("grep CapEff: /proc/self/status; ping -c 1 127.0.0.1", { capabilities: { dropCapabilities: ["NET_RAW"] } });
  assert.equal(capabilitiesFromMask(statusField(dropped.stdout, "CapEff")).includes("CAP_NET_RAW"), false);
  assert.notEqual(dropped.code, 0);
  assert.match(dropped.stderr, /permission denied/i);
});

test("capabilities: add ALL gives a full bounding set, drop ALL an empty one", { skip }, async () => {
  const all = await run("grep CapBnd: /proc/self/status", { capabilities: { addCapabilities: ["ALL"] } });
  assert.notEqual(statusField(all.stdout, "CapBnd"), "0000000000000000");
  assert.ok(capabilitiesFromMask(statusField(all.stdout, "CapBnd")).includes("CAP_SYS_ADMIN"));
  const none = await run("grep CapBnd: /proc/self/status", { capabilities: { dropCapabilities: ["ALL"] } });
  assert.equal(statusField(none.stdout, "CapBnd"), "0000000000000000");
});

test("non-root process keeps no effective capabilities unless ambient ones are asked for", { skip }, async () => {
  const asUser: SpecOpt<unknown> = (s) => { s.process!.user = { uid: 1000, gid: 1000 }; };
  const plain = await run("grep CapEff: /proc/self/status", { capabilities: { addCapabilities: ["NET_ADMIN"] } }, [asUser]);
  assert.equal(statusField(plain.stdout, "CapEff"), "0000000000000000");
  const amb = await run("grep -E 'Cap(Eff|Amb):' /proc/self/status", { capabilities: { addAmbientCapabilities: ["NET_BIND_SERVICE"] } }, [asUser]);
  assert.deepEqual(capabilitiesFromMask(statusField(amb.stdout, "CapEff")), ["CAP_NET_BIND_SERVICE"]);
  assert.deepEqual(capabilitiesFromMask(statusField(amb.stdout, "CapAmb")), ["CAP_NET_BIND_SERVICE"]);
});

test("no_new_privs: set in /proc/self/status, and a setuid binary gains root only without it", { skip }, async () => {
  const on = await run("grep NoNewPrivs: /proc/self/status", { noNewPrivs: true });
  assert.equal(statusField(on.stdout, "NoNewPrivs"), "1");
  const off = await run("grep NoNewPrivs: /proc/self/status");
  assert.equal(statusField(off.stdout, "NoNewPrivs"), "0");

  let cc = "";
  try { cc = execFileSync("sh", ["-c", "command -v cc || true"]).toString().trim(); } catch { /* no compiler */ }
  if (!cc) return; // the /proc check above still stands
  const src = join(b.dir, "euid.c");
  writeFileSync(src, '#include <stdio.h>\n#include <unistd.h>\nint main(void){printf("Effective uid: %d\\n",(int)geteuid());return 0;}\n');
  const bin = join(b.rootfs, "suid/euid");
  if (!existsSync(bin)) {
    try { execFileSync(cc, ["-static", "-o", bin, src], { stdio: "ignore" }); } catch { return; } // no static libc: the /proc check stands
    chownSync(bin, 0, 0);
    chmodSync(bin, 0o4755);
  }
  const asUser: SpecOpt<unknown> = (s) => { s.process!.user = { uid: 1000, gid: 1000 }; };
  const gains = await run("/suid/euid", { noNewPrivs: false }, [asUser]);
  assert.equal(gains.stdout, "Effective uid: 0\n", gains.stderr);
  const kept = await run("/suid/euid", { noNewPrivs: true }, [asUser]);
  assert.equal(kept.stdout, "Effective uid: 1000\n", kept.stderr);
});

test("masked path: /bin/ls cannot be executed and reads empty (critest MaskedPaths)", { skip }, async () => {
  const r = await run("wc -c < /bin/ls; /bin/ls", { maskedPaths: ["/bin/ls"] });
  assert.notEqual(r.code, 0);
  assert.equal(r.stdout, "0\n");
  assert.match(r.stderr, /\/bin\/ls: Permission denied/);
  const plain = await run("/bin/ls /");
  assert.equal(plain.code, 0, plain.stderr);
});

test("read-only path: /tmp refuses writes (critest ReadonlyPaths); rootfs stays writable", { skip }, async () => {
  const r = await run("touch /tmp/test", { readonlyPaths: ["/tmp"] });
  assert.notEqual(r.code, 0);
  assert.equal(r.stderr, "touch: /tmp/test: Read-only file system\n");
  const w = await run("touch /etc/ok && echo ok", { readonlyPaths: ["/tmp"] });
  assert.equal(w.stdout, "ok\n", w.stderr);
});

test("default read-only paths: /proc/sys is read-only", { skip }, async () => {
  const r = await run("echo 1 > /proc/sys/kernel/ns_last_pid");
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /Read-only file system/);
});

test("read-only rootfs refuses writes", { skip }, async () => {
  const r = await run("touch /etc/nope", { readonlyRootfs: true });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /Read-only file system/);
});
