import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BerthError, Code } from "../foundation/errdefs.ts";
import { execFileSync } from "node:child_process";
import { MAX_PROFILE_BYTES, loadLocalhostProfile, parseProfile } from "./profile-loader.ts";
import { runtimeDefaultProfile } from "./runtime-default.ts";
import { RUNTIME_DEFAULT_RULES } from "./default-profile.ts";
import { decide } from "../../conformance/lib/seccomp-eval.ts";

const dir = mkdtempSync(join(tmpdir(), "berth-seccomp-loader-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, body: string): string => { const p = join(dir, name); writeFileSync(p, body); return p; };

const opts = { capabilities: ["CAP_CHOWN"], arch: "amd64", kernel: "6.1.0" };

/** Asserts INVALID_ARGUMENT whose message contains every fragment. */
const invalid = (...fragments: string[]) => (e: unknown) => {
  assert.ok(e instanceof BerthError, String(e));
  assert.equal(e.code, Code.INVALID_ARGUMENT);
  for (const f of fragments) assert.ok(e.message.includes(f), `"${e.message}" lacks "${f}"`);
  return true;
};

test("OCI format (critest's block-hostname profile) loads as is", async () => {
  const p = file("oci.json", JSON.stringify({
    defaultAction: "SCMP_ACT_ALLOW",
    syscalls: [{ names: ["sethostname"], action: "SCMP_ACT_ERRNO" }],
  }));
  const s = await loadLocalhostProfile(p, opts);
  assert.deepEqual(s, { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["sethostname"], action: "SCMP_ACT_ERRNO" }] });
  assert.equal(decide(s, "sethostname"), "errno:1");
  assert.equal(decide(s, "chmod"), "allow");
});

test("OCI format keeps architectures, flags, errnoRet and args", () => {
  const s = parseProfile(JSON.stringify({
    defaultAction: "SCMP_ACT_ERRNO", defaultErrnoRet: 13, architectures: ["SCMP_ARCH_X86_64"],
    flags: ["SECCOMP_FILTER_FLAG_LOG"],
    syscalls: [{ names: ["personality"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: 8, op: "SCMP_CMP_EQ" }] },
      { names: ["chmod"], action: "SCMP_ACT_ERRNO", errnoRet: 1 }],
  }), "x.json", opts);
  assert.deepEqual(s, {
    defaultAction: "SCMP_ACT_ERRNO", defaultErrnoRet: 13, architectures: ["SCMP_ARCH_X86_64"], flags: ["SECCOMP_FILTER_FLAG_LOG"],
    syscalls: [{ names: ["personality"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: 8, op: "SCMP_CMP_EQ" }] },
      { names: ["chmod"], action: "SCMP_ACT_ERRNO", errnoRet: 1 }],
  });
});

const dockerProfile = {
  defaultAction: "SCMP_ACT_ERRNO",
  defaultErrnoRet: 1,
  archMap: [
    { architecture: "SCMP_ARCH_X86_64", subArchitectures: ["SCMP_ARCH_X86", "SCMP_ARCH_X32"] },
    { architecture: "SCMP_ARCH_AARCH64", subArchitectures: ["SCMP_ARCH_ARM"] },
    { architecture: "SCMP_ARCH_RISCV64", subArchitectures: null },
  ],
  syscalls: [
    { names: ["read", "write", "exit_group", "riscv_hwprobe"], action: "SCMP_ACT_ALLOW", args: [] },
    { name: "chmod", action: "SCMP_ACT_ALLOW", comment: "old single-name form" },
    { names: ["sethostname"], action: "SCMP_ACT_ALLOW", includes: { caps: ["CAP_SYS_ADMIN"] } },
    { names: ["arch_prctl"], action: "SCMP_ACT_ALLOW", includes: { arches: ["amd64", "x32"] } },
    { names: ["set_tls"], action: "SCMP_ACT_ALLOW", includes: { arches: ["arm", "arm64"] } },
    { names: ["clone"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: 2114060288, op: "SCMP_CMP_MASKED_EQ" }], excludes: { caps: ["CAP_SYS_ADMIN"] } },
    { names: ["ptrace"], action: "SCMP_ACT_ALLOW", includes: { minKernel: "4.8" } },
    { names: ["uselib"], action: "SCMP_ACT_ALLOW", excludes: { arches: ["amd64"] } },
  ],
};

test("Docker format: archMap picks this architecture, includes/excludes filter by caps, arch and kernel", async () => {
  const p = file("docker.json", JSON.stringify(dockerProfile));
  const s = await loadLocalhostProfile(p, opts);
  assert.equal(s.defaultErrnoRet, 1);
  assert.deepEqual(s.architectures, ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
  const names = s.syscalls!.flatMap((x) => x.names);
  assert.ok(names.includes("chmod"), "name is turned into names");
  assert.ok(names.includes("arch_prctl"));
  assert.ok(!names.includes("set_tls"), "arm-only rule left out on amd64");
  assert.ok(!names.includes("sethostname"), "CAP_SYS_ADMIN rule left out without the capability");
  assert.ok(names.includes("clone"), "excludes CAP_SYS_ADMIN keeps the rule without it");
  assert.ok(names.includes("ptrace"));
  assert.ok(!names.includes("uselib"));
  assert.equal(s.syscalls!.find((x) => x.names[0] === "read")!.args, undefined, "empty args dropped");
  for (const x of s.syscalls!) assert.deepEqual(Object.keys(x).filter((k) => !["names", "action", "errnoRet", "args"].includes(k)), []);

  const admin = await loadLocalhostProfile(p, { ...opts, capabilities: ["SYS_ADMIN"], kernel: "4.4.0" });
  const adminNames = admin.syscalls!.flatMap((x) => x.names);
  assert.ok(adminNames.includes("sethostname"));
  assert.ok(!adminNames.includes("clone"));
  assert.ok(!adminNames.includes("ptrace"), "minKernel 4.8 not met by 4.4");

  const arm = await loadLocalhostProfile(p, { ...opts, arch: "arm64" });
  assert.deepEqual(arm.architectures, ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]);
  assert.ok(arm.syscalls!.flatMap((x) => x.names).includes("set_tls"));
});

test("berth's own RuntimeDefault, written out as OCI JSON, loads back unchanged", () => {
  const def = runtimeDefaultProfile(opts);
  assert.deepEqual(parseProfile(JSON.stringify(def), "default.json", opts), def);
});

test("a missing file is invalid argument naming it", async () => {
  const p = join(dir, "nope.json");
  await assert.rejects(loadLocalhostProfile(p, opts), invalid(p, "does not exist"));
});

test("an unreadable path is invalid argument naming it", async () => {
  const d = join(dir, "a-dir.json");
  mkdirSync(d);
  await assert.rejects(loadLocalhostProfile(d, opts), invalid(d, "cannot be read", "EISDIR"));
  if (process.getuid?.() !== 0) {
    const p = file("noperm.json", "{}");
    chmodSync(p, 0o000);
    await assert.rejects(loadLocalhostProfile(p, opts), invalid(p, "EACCES"));
  }
});

test("a profile over the size limit is refused naming the path and the limit, before it is parsed", async () => {
  const p = file("big.json", JSON.stringify({ defaultAction: "SCMP_ACT_ALLOW", pad: "x".repeat(MAX_PROFILE_BYTES) }));
  await assert.rejects(loadLocalhostProfile(p, opts), invalid(p, `over the limit of ${MAX_PROFILE_BYTES} bytes`));
  const small = file("small-limit.json", JSON.stringify({ defaultAction: "SCMP_ACT_ALLOW" }));
  await assert.rejects(loadLocalhostProfile(small, opts, 10), invalid(small, "over the limit of 10 bytes"));
  assert.equal((await loadLocalhostProfile(small, opts, 1000)).defaultAction, "SCMP_ACT_ALLOW");
});

test("a fifo or a device is refused at once (the read would block or never end)", async () => {
  const fifo = join(dir, "fifo.json");
  execFileSync("mkfifo", [fifo]);
  const t0 = Date.now();
  await assert.rejects(loadLocalhostProfile(fifo, opts), invalid(fifo, "a fifo", "regular file"));
  await assert.rejects(loadLocalhostProfile("/dev/zero", opts), invalid("/dev/zero", "a device", "regular file"));
  assert.ok(Date.now() - t0 < 2000, `took ${Date.now() - t0} ms`);
});

test("invalid json is invalid argument naming the file", async () => {
  const p = file("bad.json", "{ defaultAction: ");
  await assert.rejects(loadLocalhostProfile(p, opts), invalid(p, "not valid json"));
});

const bad: [string, unknown, string[]][] = [
  ["top level not an object", [1], ["(top level)"]],
  ["missing defaultAction", { syscalls: [] }, ["defaultAction", "action is required"]],
  ["unknown defaultAction", { defaultAction: "SCMP_ACT_MAYBE" }, ["defaultAction", "SCMP_ACT_MAYBE"]],
  ["unknown syscall action", { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["read"], action: "SCMP_ACT_DENY" }] }, ["syscalls[0].action", "SCMP_ACT_DENY"]],
  ["unknown syscall name", { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["read", "sethostnam"], action: "SCMP_ACT_ERRNO" }] }, ["syscalls[0].names[1]", "sethostnam"]],
  ["unknown single name", { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ name: "frobnicate", action: "SCMP_ACT_ERRNO" }] }, ["syscalls[0].name", "frobnicate"]],
  ["both name and names", { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ name: "read", names: ["write"], action: "SCMP_ACT_ERRNO" }] }, ["syscalls[0]", "both name and names"]],
  ["no names", { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: [], action: "SCMP_ACT_ERRNO" }] }, ["syscalls[0].names", "required"]],
  ["unknown architecture", { defaultAction: "SCMP_ACT_ALLOW", architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_Z80"] }, ["architectures[1]", "SCMP_ARCH_Z80"]],
  ["unknown archMap architecture", { defaultAction: "SCMP_ACT_ALLOW", archMap: [{ architecture: "SCMP_ARCH_PDP11" }] }, ["archMap[0].architecture", "SCMP_ARCH_PDP11"]],
  ["unknown archMap sub-architecture", { defaultAction: "SCMP_ACT_ALLOW", archMap: [{ architecture: "SCMP_ARCH_X86_64", subArchitectures: ["x86"] }] }, ["archMap[0].subArchitectures[0]", "x86"]],
  ["architectures and archMap", { defaultAction: "SCMP_ACT_ALLOW", architectures: ["SCMP_ARCH_X86_64"], archMap: [{ architecture: "SCMP_ARCH_X86_64" }] }, ["archMap", "architectures"]],
  ["unknown includes arch", { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["read"], action: "SCMP_ACT_ALLOW", includes: { arches: ["sparc"] } }] }, ["syscalls[0].includes.arches[0]", "sparc"]],
  ["unknown includes capability", { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["read"], action: "SCMP_ACT_ALLOW", includes: { caps: ["CAP_FLY"] } }] }, ["syscalls[0].includes.caps[0]", "CAP_FLY"]],
  ["unknown excludes capability", { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["read"], action: "SCMP_ACT_ALLOW", excludes: { caps: ["CAP_NOPE"] } }] }, ["syscalls[0].excludes.caps[0]", "CAP_NOPE"]],
  ["bad minKernel", { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["read"], action: "SCMP_ACT_ALLOW", includes: { minKernel: "new" } }] }, ["syscalls[0].includes.minKernel", "new"]],
  ["bad arg op", { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["read"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: 1, op: "SCMP_CMP_ABOUT" }] }] }, ["syscalls[0].args[0].op", "SCMP_CMP_ABOUT"]],
  ["bad arg index", { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["read"], action: "SCMP_ACT_ALLOW", args: [{ index: 6, value: 1, op: "SCMP_CMP_EQ" }] }] }, ["syscalls[0].args[0].index"]],
  ["negative errno", { defaultAction: "SCMP_ACT_ERRNO", defaultErrnoRet: -1 }, ["defaultErrnoRet"]],
  ["unknown flag", { defaultAction: "SCMP_ACT_ALLOW", flags: ["SECCOMP_FILTER_FLAG_FAST"] }, ["flags[0]", "SECCOMP_FILTER_FLAG_FAST"]],
  ["notify without listener", { defaultAction: "SCMP_ACT_NOTIFY" }, ["listenerPath"]],
];
for (const [what, doc, fragments] of bad) {
  test(`invalid profile: ${what}`, () => {
    assert.throws(() => parseProfile(JSON.stringify(doc), "/etc/p.json", opts), invalid("/etc/p.json", ...fragments));
  });
}

test("names of other architectures are accepted (the runtime skips calls this kernel lacks)", () => {
  const s = parseProfile(JSON.stringify({
    defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["set_tls", "riscv_hwprobe", "recv"], action: "SCMP_ACT_ERRNO" }],
  }), "p.json", opts);
  assert.deepEqual(s.syscalls![0]!.names, ["set_tls", "riscv_hwprobe", "recv"]);
  // and compat (i386) names are fine on x86_64 hosts
  parseProfile(JSON.stringify({ defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["chown32", "socketcall"], action: "SCMP_ACT_ERRNO" }] }), "p.json", opts);
});

test("the Docker-format rendering of berth's rules loads to exactly the generated profile", () => {
  const docker = {
    defaultAction: "SCMP_ACT_ERRNO", defaultErrnoRet: 1,
    archMap: [
      { architecture: "SCMP_ARCH_X86_64", subArchitectures: ["SCMP_ARCH_X86", "SCMP_ARCH_X32"] },
      { architecture: "SCMP_ARCH_AARCH64", subArchitectures: ["SCMP_ARCH_ARM"] },
      { architecture: "SCMP_ARCH_S390X", subArchitectures: ["SCMP_ARCH_S390"] },
    ],
    syscalls: RUNTIME_DEFAULT_RULES.map((r) => ({
      names: r.names, comment: r.why,
      action: r.action === "allow" ? "SCMP_ACT_ALLOW" : "SCMP_ACT_ERRNO",
      ...(r.action === "allow" ? {} : { errnoRet: r.action.errno }),
      ...(r.args ? { args: r.args } : {}),
      includes: { ...(r.when?.caps ? { caps: r.when.caps } : {}), ...(r.when?.arches ? { arches: r.when.arches } : {}), ...(r.when?.minKernel ? { minKernel: r.when.minKernel } : {}) },
      excludes: { ...(r.when?.withoutCaps ? { caps: r.when.withoutCaps } : {}), ...(r.when?.notArches ? { arches: r.when.notArches } : {}) },
    })),
  };
  const text = JSON.stringify(docker);
  for (const capabilities of [["CAP_CHOWN"], ["CAP_SYS_ADMIN", "CAP_SYS_PTRACE"], ["CAP_SYS_BOOT", "CAP_BPF", "CAP_SYS_MODULE"]]) {
    for (const arch of ["amd64", "arm64", "s390x"]) {
      for (const kernel of ["4.4.0", "6.1.0"]) {
        const o = { capabilities, arch, kernel };
        assert.deepEqual(parseProfile(text, "docker.json", o), runtimeDefaultProfile(o), JSON.stringify(o));
      }
    }
  }
});
