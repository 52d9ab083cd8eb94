import { test } from "node:test";
import assert from "node:assert/strict";
import type { Seccomp } from "../bundle-spec/types.ts";
import { BerthError, Code } from "../foundation/errdefs.ts";
import { runtimeDefaultProfile } from "./runtime-default.ts";
import { RUNTIME_DEFAULT_RULES, CLONE_NAMESPACE_FLAGS } from "./default-profile.ts";
import { SCMP_ARCHES, isSyscallOn } from "./arch.ts";
import { DEFAULT_CAPABILITIES } from "../security/capability-names.ts";
import { decide } from "../../conformance/lib/seccomp-eval.ts";

const KERNEL = "6.1.0";
const profile = (caps: readonly string[], arch = "amd64", kernel = KERNEL): Seccomp =>
  runtimeDefaultProfile({ capabilities: caps, arch, kernel });

test("default action is ERRNO with EPERM", () => {
  const p = profile(DEFAULT_CAPABILITIES);
  assert.equal(p.defaultAction, "SCMP_ACT_ERRNO");
  assert.equal(p.defaultErrnoRet, 1);
});

test("architectures cover the compat modes of the native one", () => {
  assert.deepEqual(profile([], "x86_64").architectures, ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
  assert.deepEqual(profile([], "x64").architectures, ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
  assert.deepEqual(profile([], "aarch64").architectures, ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]);
  assert.deepEqual(profile([], "arm64").architectures, ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]);
});

test("an unknown architecture is invalid argument", () => {
  assert.throws(() => profile([], "vax"), (e: unknown) => e instanceof BerthError && e.code === Code.INVALID_ARGUMENT && /vax/.test(e.message));
});

test("ordinary calls are allowed, others get EPERM", () => {
  const p = profile(DEFAULT_CAPABILITIES);
  for (const name of ["read", "write", "openat", "execve", "exit_group", "chmod", "fchmodat", "setuid", "capset"]) {
    assert.equal(decide(p, name), "allow", name);
  }
  for (const name of ["kexec_load", "swapon", "pivot_root", "add_key", "keyctl", "userfaultfd", "mount"]) {
    assert.equal(decide(p, name), "errno:1", name);
  }
});

test("sethostname and friends need CAP_SYS_ADMIN", () => {
  const without = profile(DEFAULT_CAPABILITIES);
  const withAdmin = profile([...DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"]);
  for (const name of ["sethostname", "setdomainname", "mount", "umount2", "unshare", "setns", "bpf"]) {
    assert.equal(decide(without, name), "errno:1", `${name} without SYS_ADMIN`);
    assert.equal(decide(withAdmin, name), "allow", `${name} with SYS_ADMIN`);
  }
  // the CRI spelling (no prefix, any case) counts too
  assert.equal(decide(profile(["sys_admin"]), "sethostname"), "allow");
});

test("clone without CAP_SYS_ADMIN refuses namespace flags", () => {
  const p = profile(DEFAULT_CAPABILITIES);
  const rule = p.syscalls!.find((s) => s.names.includes("clone"))!;
  assert.deepEqual(rule.args, [{ index: 0, op: "SCMP_CMP_MASKED_EQ", value: CLONE_NAMESPACE_FLAGS, valueTwo: 0 }]);
  assert.equal(CLONE_NAMESPACE_FLAGS, 2114060288);
  assert.equal(decide(p, "clone", [0x11 /* SIGCHLD|... */]), "allow");
  assert.equal(decide(p, "clone", [0x3d0f00 /* thread flags */]), "allow");
  assert.equal(decide(p, "clone", [0x20000000 /* CLONE_NEWPID */]), "errno:1");
  assert.equal(decide(p, "clone", [0x40000000 /* CLONE_NEWNET */]), "errno:1");
  assert.equal(decide(p, "clone3"), "errno:38", "clone3 gives ENOSYS so libc falls back to clone");
});

test("clone is unrestricted with CAP_SYS_ADMIN, and on s390x the flags are argument 1", () => {
  const p = profile(["CAP_SYS_ADMIN"]);
  assert.equal(decide(p, "clone", [0x20000000]), "allow");
  assert.equal(decide(p, "clone3"), "allow");
  const s390 = profile([], "s390x");
  assert.equal(s390.syscalls!.find((s) => s.names.includes("clone"))!.args![0]!.index, 1);
});

test("personality allows only the listed values", () => {
  const p = profile(DEFAULT_CAPABILITIES);
  for (const v of [0, 8, 0x20000, 0x20008, 0xffffffff]) assert.equal(decide(p, "personality", [v]), "allow", v.toString(16));
  assert.equal(decide(p, "personality", [0x0040000 /* ADDR_NO_RANDOMIZE */]), "errno:1");
});

test("socket refuses AF_ALG and AF_VSOCK only", () => {
  const p = profile(DEFAULT_CAPABILITIES);
  for (const family of [1, 2, 10, 16 /* AF_NETLINK */, 17, 37, 39, 41, 44]) assert.equal(decide(p, "socket", [family]), "allow", `${family}`);
  assert.equal(decide(p, "socket", [38]), "errno:1", "AF_ALG");
  assert.equal(decide(p, "socket", [40]), "errno:1", "AF_VSOCK");
});

test("capability-gated calls", () => {
  const cases: [string, string[]][] = [
    ["CAP_SYS_BOOT", ["reboot"]],
    ["CAP_SYS_CHROOT", ["chroot"]],
    ["CAP_SYS_MODULE", ["init_module", "finit_module", "delete_module"]],
    ["CAP_SYS_PACCT", ["acct"]],
    ["CAP_SYS_PTRACE", ["kcmp", "pidfd_getfd", "process_madvise"]],
    ["CAP_SYS_RAWIO", ["iopl", "ioperm"]],
    ["CAP_SYS_TIME", ["settimeofday", "clock_settime"]],
    ["CAP_SYS_TTY_CONFIG", ["vhangup"]],
    ["CAP_SYS_NICE", ["mbind", "set_mempolicy"]],
    ["CAP_SYSLOG", ["syslog"]],
    ["CAP_BPF", ["bpf"]],
    ["CAP_PERFMON", ["perf_event_open"]],
    ["CAP_DAC_READ_SEARCH", ["open_by_handle_at"]],
  ];
  const base = profile([]);
  for (const [cap, names] of cases) {
    const p = profile([cap]);
    for (const n of names) {
      assert.equal(decide(base, n), "errno:1", `${n} without ${cap}`);
      assert.equal(decide(p, n), "allow", `${n} with ${cap}`);
    }
  }
  // the default set includes SYS_CHROOT, so chroot is allowed by default as in containerd
  assert.equal(decide(profile(DEFAULT_CAPABILITIES), "chroot"), "allow");
});

test("architecture-specific calls follow the native architecture", () => {
  assert.equal(decide(profile([], "amd64"), "arch_prctl"), "allow");
  assert.equal(decide(profile([], "arm64"), "arch_prctl"), "errno:1");
  assert.equal(decide(profile([], "arm64"), "set_tls"), "allow");
  assert.equal(decide(profile([], "amd64"), "set_tls"), "errno:1");
  assert.equal(decide(profile([], "amd64"), "modify_ldt"), "allow");
});

test("ptrace needs kernel 4.8 unless CAP_SYS_PTRACE", () => {
  assert.equal(decide(profile([], "amd64", "6.1.0-18-amd64"), "ptrace"), "allow");
  assert.equal(decide(profile([], "amd64", "4.4.0"), "ptrace"), "errno:1");
  assert.equal(decide(profile(["CAP_SYS_PTRACE"], "amd64", "4.4.0"), "ptrace"), "allow");
});

test("every name in the profile is a syscall on some architecture", () => {
  for (const rule of RUNTIME_DEFAULT_RULES) {
    for (const n of rule.names) assert.ok(isSyscallOn(n, SCMP_ARCHES), n);
  }
});

test("rules produce OCI fields only", () => {
  for (const s of profile(["CAP_SYS_ADMIN"]).syscalls!) {
    assert.deepEqual(Object.keys(s).filter((k) => !["names", "action", "errnoRet", "args"].includes(k)), []);
  }
});
