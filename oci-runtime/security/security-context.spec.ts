import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Spec } from "../bundle-spec/types.ts";
import { BerthError, Code } from "../foundation/errdefs.ts";
import { withSecurityContext, withSandboxSecurityContext, type ContainerSecurityInput, type HostSecurity } from "./security-context.ts";
import { ALL_CAPABILITIES, DEFAULT_CAPABILITIES } from "./capability-names.ts";
import { DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS } from "./paths.ts";
import { decide } from "../../conformance/lib/seccomp-eval.ts";

const dir = mkdtempSync(join(tmpdir(), "berth-secctx-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const blockHostname = join(dir, "block-hostname.json");
writeFileSync(blockHostname, JSON.stringify({ defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["sethostname"], action: "SCMP_ACT_ERRNO" }] }));

const DEVICES = [{ type: "c", path: "/dev/kmsg", major: 1, minor: 11, fileMode: 0o644, uid: 0, gid: 0 },
  { type: "c", path: "/dev/null", major: 1, minor: 3, fileMode: 0o666, uid: 0, gid: 0 }];
let devicesRead = 0;
const host: HostSecurity = {
  capabilities: [...ALL_CAPABILITIES], arch: "amd64", kernel: "6.1.0", appArmorEnabled: false,
  devices: async () => { devicesRead++; return DEVICES; },
};

const baseSpec = (): Spec => ({
  ociVersion: "1.0.2",
  process: { user: { uid: 0, gid: 0 }, cwd: "/", args: ["sh"], apparmorProfile: "stale" },
  root: { path: "rootfs" },
  mounts: [
    { destination: "/proc", type: "proc", source: "proc" },
    { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
    { destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["nosuid", "noexec", "nodev", "relatime", "ro"] },
    { destination: "/data", type: "bind", source: "/tmp", options: ["rbind", "ro"] },
  ],
  linux: { devices: [{ type: "c", path: "/dev/null", major: 1, minor: 3 }], resources: { devices: [{ allow: false, access: "rwm" }] } },
});

const build = async (input: ContainerSecurityInput): Promise<Spec> => {
  const spec = baseSpec();
  await withSecurityContext({ host, ...input })(spec, undefined);
  return spec;
};
const invalid = (...fragments: string[]) => (e: unknown) => {
  assert.ok(e instanceof BerthError, String(e));
  assert.equal(e.code, Code.INVALID_ARGUMENT);
  for (const f of fragments) assert.ok(e.message.includes(f), `"${e.message}" lacks "${f}"`);
  return true;
};

test("no security context: default caps, default masked/readonly paths, no seccomp, no apparmor", async () => {
  const s = await build({});
  assert.deepEqual(s.process!.capabilities!.bounding, DEFAULT_CAPABILITIES);
  assert.deepEqual(s.process!.capabilities!.ambient, []);
  assert.equal(s.process!.noNewPrivileges, false);
  assert.equal(s.process!.apparmorProfile, undefined);
  assert.equal(s.linux!.seccomp, undefined);
  assert.deepEqual(s.linux!.maskedPaths, DEFAULT_MASKED_PATHS);
  assert.deepEqual(s.linux!.readonlyPaths, DEFAULT_READONLY_PATHS);
  assert.equal(s.root!.readonly, undefined);
  assert.equal(s.mounts![1]!.options!.includes("ro"), true, "sysfs stays read-only");
});

test("CRI masked/readonly lists replace the defaults (critest MaskedPaths / ReadonlyPaths)", async () => {
  const s = await build({ maskedPaths: ["/bin/ls"], readonlyPaths: ["/tmp"] });
  assert.deepEqual(s.linux!.maskedPaths, ["/bin/ls"]);
  assert.deepEqual(s.linux!.readonlyPaths, ["/tmp"]);
  const e = await build({ maskedPaths: [], readonlyPaths: [] });
  assert.deepEqual(e.linux!.maskedPaths, DEFAULT_MASKED_PATHS, "an empty proto list means not given");
});

test("seccomp RuntimeDefault follows the capabilities the container ends up with", async () => {
  const plain = await build({ seccomp: { profileType: 0 } });
  assert.equal(decide(plain.linux!.seccomp!, "sethostname"), "errno:1");
  const admin = await build({ seccomp: { profileType: 0 }, capabilities: { addCapabilities: ["SYS_ADMIN"] } });
  assert.equal(decide(admin.linux!.seccomp!, "sethostname"), "allow");
  const dropped = await build({ seccomp: { profileType: 0 }, capabilities: { addCapabilities: ["ALL"], dropCapabilities: ["SYS_ADMIN"] } });
  assert.equal(decide(dropped.linux!.seccomp!, "sethostname"), "errno:1");
});

test("seccomp Localhost, legacy path and configured default", async () => {
  const a = await build({ seccomp: { profileType: 2, localhostRef: blockHostname }, capabilities: { addCapabilities: ["SYS_ADMIN"] } });
  assert.equal(decide(a.linux!.seccomp!, "sethostname"), "errno:1");
  const b = await build({ seccompProfilePath: `localhost/${blockHostname}` });
  assert.deepEqual(b.linux!.seccomp, a.linux!.seccomp);
  const c = await build({ seccompDefault: "RuntimeDefault" });
  assert.equal(c.linux!.seccomp!.defaultAction, "SCMP_ACT_ERRNO");
  const d = await build({ seccompDefault: "RuntimeDefault", seccomp: { profileType: 1 } });
  assert.equal(d.linux!.seccomp, undefined);
});

test("privileged: all caps, no seccomp, no masked/readonly paths, host devices, writable sysfs and cgroupfs", async () => {
  devicesRead = 0;
  const s = await build({
    privileged: true, podPrivileged: true, seccomp: { profileType: 2, localhostRef: blockHostname },
    capabilities: { dropCapabilities: ["ALL"] }, maskedPaths: ["/bin/ls"],
  });
  assert.deepEqual(s.process!.capabilities!.bounding, [...ALL_CAPABILITIES]);
  assert.deepEqual(s.process!.capabilities!.effective, [...ALL_CAPABILITIES]);
  assert.equal(s.linux!.seccomp, undefined);
  assert.deepEqual(s.linux!.maskedPaths, []);
  assert.deepEqual(s.linux!.readonlyPaths, []);
  assert.deepEqual(s.linux!.devices!.map((d) => d.path), ["/dev/null", "/dev/kmsg"], "host devices added once each");
  assert.deepEqual(s.linux!.resources!.devices, [{ allow: true, access: "rwm" }]);
  assert.deepEqual(s.mounts![1]!.options, ["nosuid", "noexec", "nodev", "rw"]);
  assert.deepEqual(s.mounts![2]!.options, ["nosuid", "noexec", "nodev", "relatime", "rw"]);
  assert.deepEqual(s.mounts![3]!.options, ["rbind", "ro"], "other mounts keep ro");
  assert.equal(devicesRead, 1);
});

test("a privileged container in a non-privileged pod is refused before the spec is touched", async () => {
  const spec = baseSpec();
  await assert.rejects(async () => withSecurityContext({ host, privileged: true, podPrivileged: false })(spec, undefined), invalid("privileged", "pod"));
  assert.deepEqual(spec, baseSpec());
});

test("no_new_privs and read-only rootfs", async () => {
  const s = await build({ noNewPrivs: true, readonlyRootfs: true });
  assert.equal(s.process!.noNewPrivileges, true);
  assert.equal(s.root!.readonly, true);
  assert.equal(s.root!.path, "rootfs");
});

test("bad input is invalid argument and leaves the spec alone", async () => {
  const cases: [ContainerSecurityInput, string[]][] = [
    [{ capabilities: { addCapabilities: ["NET_WIZARD"] } }, ["NET_WIZARD"]],
    [{ seccomp: { profileType: 2 } }, ["seccomp", "localhost_ref"]],
    [{ seccomp: { profileType: 2, localhostRef: join(dir, "missing.json") } }, [join(dir, "missing.json"), "does not exist"]],
    [{ seccompProfilePath: "/no/prefix.json" }, ["seccomp_profile_path", "/no/prefix.json"]],
    [{ apparmor: { profileType: 2, localhostRef: "my-profile" } }, ["my-profile", "apparmor is not enabled"]],
    [{ apparmorProfile: "localhost/my-profile" }, ["my-profile", "apparmor is not enabled"]],
    [{ apparmor: { profileType: 2 } }, ["apparmor", "localhost_ref"]],
    // a malformed seccomp choice fails even when privileged would ignore it
    [{ privileged: true, podPrivileged: true, seccomp: { profileType: 2 } }, ["localhost_ref"]],
  ];
  for (const [input, fragments] of cases) {
    const spec = baseSpec();
    await assert.rejects(async () => withSecurityContext({ host, ...input })(spec, undefined), invalid(...fragments), JSON.stringify(input));
    assert.deepEqual(spec, baseSpec());
  }
});

test("apparmor without AppArmor on the host: RuntimeDefault and Unconfined are no-ops", async () => {
  for (const apparmor of [{ profileType: 0 }, { profileType: 1 }]) {
    assert.equal((await build({ apparmor })).process!.apparmorProfile, undefined);
  }
  assert.equal((await build({ apparmorProfile: "runtime/default" })).process!.apparmorProfile, undefined);
});

test("apparmor on an AppArmor host", async () => {
  const aa: HostSecurity = { ...host, appArmorEnabled: true, appArmorDefault: "berth-default", appArmorProfiles: async () => new Set(["berth-default", "deny-write"]) };
  const run = async (input: ContainerSecurityInput) => { const s = baseSpec(); await withSecurityContext({ ...input, host: aa })(s, undefined); return s.process!.apparmorProfile; };
  assert.equal(await run({ apparmor: { profileType: 2, localhostRef: "localhost/deny-write" } }), "deny-write");
  assert.equal(await run({ apparmor: { profileType: 2, localhostRef: "deny-write" } }), "deny-write");
  assert.equal(await run({ apparmorProfile: "localhost/deny-write" }), "deny-write");
  assert.equal(await run({}), "berth-default", "nothing set means RuntimeDefault");
  assert.equal(await run({ apparmor: { profileType: 1 } }), undefined);
  assert.equal(await run({ privileged: true, podPrivileged: true }), undefined, "privileged gets no default profile");
  assert.equal(await run({ apparmor: { profileType: 2, localhostRef: "deny-write" }, apparmorProfile: "localhost/other" }), "deny-write", "structured field wins");
  await assert.rejects(() => run({ apparmor: { profileType: 2, localhostRef: "localhost/non-existent-profile" } }), invalid("non-existent-profile", "not loaded"));
});

test("selinux options are accepted and change nothing", async () => {
  const s = await build({ selinuxOptions: { user: "system_u", role: "system_r", type: "container_t", level: "s0:c1,c2" } });
  assert.equal(s.process!.selinuxLabel, undefined);
  assert.deepEqual(s.process!.capabilities!.bounding, DEFAULT_CAPABILITIES);
});

test("sandbox: default caps, no_new_privs, pod seccomp, default paths; privileged pod relaxes them", async () => {
  const s = baseSpec();
  await withSandboxSecurityContext({ host, seccomp: { profileType: 0 }, readonlyRootfs: true })(s, undefined);
  assert.deepEqual(s.process!.capabilities!.bounding, DEFAULT_CAPABILITIES);
  assert.equal(s.process!.noNewPrivileges, true);
  assert.equal(s.linux!.seccomp!.defaultAction, "SCMP_ACT_ERRNO");
  assert.deepEqual(s.linux!.maskedPaths, DEFAULT_MASKED_PATHS);
  assert.equal(s.root!.readonly, true);
  const p = baseSpec();
  await withSandboxSecurityContext({ host, privileged: true, seccomp: { profileType: 0 } })(p, undefined);
  assert.equal(p.linux!.seccomp, undefined);
  assert.deepEqual(p.linux!.maskedPaths, []);
  assert.deepEqual(p.process!.capabilities!.bounding, [...ALL_CAPABILITIES]);
  const bad = baseSpec();
  await assert.rejects(async () => withSandboxSecurityContext({ host, seccompProfilePath: "nonsense" })(bad, undefined), invalid("nonsense"));
});
