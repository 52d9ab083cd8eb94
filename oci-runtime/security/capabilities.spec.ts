import { test } from "node:test";
import assert from "node:assert/strict";
import { BerthError, Code } from "../foundation/errdefs.ts";
import { computeCapabilities, validateCapabilities } from "./capabilities.ts";
import { ALL_CAPABILITIES, DEFAULT_CAPABILITIES, canonicalCapability, capabilitiesFromMask, capabilityMask } from "./capability-names.ts";

const HOST = [...ALL_CAPABILITIES];
const caps = (add?: string[], drop?: string[], extra: { privileged?: boolean; ambient?: string[]; host?: string[] } = {}) =>
  computeCapabilities({
    capabilities: { addCapabilities: add ?? [], dropCapabilities: drop ?? [], addAmbientCapabilities: extra.ambient ?? [] },
    privileged: extra.privileged, hostCapabilities: extra.host ?? HOST,
  });
const invalid = (...fragments: string[]) => (e: unknown) => {
  assert.ok(e instanceof BerthError, String(e));
  assert.equal(e.code, Code.INVALID_ARGUMENT);
  for (const f of fragments) assert.ok(e.message.includes(f), `"${e.message}" lacks "${f}"`);
  return true;
};

test("the default set is containerd's", () => {
  assert.deepEqual(DEFAULT_CAPABILITIES, [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID",
    "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
  ]);
  const s = computeCapabilities({ hostCapabilities: HOST });
  assert.deepEqual(s.bounding, DEFAULT_CAPABILITIES);
  assert.deepEqual(s.effective, DEFAULT_CAPABILITIES);
  assert.deepEqual(s.permitted, DEFAULT_CAPABILITIES);
  assert.deepEqual(s.inheritable, []);
  assert.deepEqual(s.ambient, []);
});

test("names are accepted with or without CAP_, in any case", () => {
  for (const n of ["NET_ADMIN", "net_admin", "CAP_NET_ADMIN", "cap_net_admin", " Net_Admin "]) assert.equal(canonicalCapability(n), "CAP_NET_ADMIN", n);
  assert.equal(canonicalCapability("NET_WIZARD"), undefined);
  assert.equal(canonicalCapability("ALL"), undefined);
});

test("add and drop single capabilities", () => {
  const s = caps(["NET_ADMIN", "sys_time"], ["NET_RAW", "CAP_KILL"]);
  assert.ok(s.bounding.includes("CAP_NET_ADMIN") && s.bounding.includes("CAP_SYS_TIME"));
  assert.ok(!s.bounding.includes("CAP_NET_RAW") && !s.bounding.includes("CAP_KILL"));
  assert.deepEqual(s.effective, s.bounding);
  assert.deepEqual(s.permitted, s.bounding);
});

test("ALL: add ALL then drop one; drop ALL then add one", () => {
  const a = caps(["ALL"], ["CHOWN"]);
  assert.deepEqual(a.bounding, HOST.filter((c) => c !== "CAP_CHOWN"));
  const b = caps(["NET_ADMIN"], ["ALL"]);
  assert.deepEqual(b.bounding, ["CAP_NET_ADMIN"]);
  assert.deepEqual(caps([], ["all"]).bounding, []);
  assert.deepEqual(caps(["all"], []).bounding, HOST);
});

test("ALL means what the host has", () => {
  const host = ["CAP_CHOWN", "CAP_SYS_ADMIN"];
  assert.deepEqual(caps(["ALL"], [], { host }).bounding, ["CAP_CHOWN", "CAP_SYS_ADMIN"]);
});

test("privileged gets every host capability, whatever add/drop say", () => {
  assert.deepEqual(caps([], ["ALL"], { privileged: true }).bounding, HOST);
  assert.deepEqual(caps([], [], { privileged: true, host: ["CAP_KILL"] }).effective, ["CAP_KILL"]);
});

test("ambient capabilities go into every set", () => {
  const s = caps([], [], { ambient: ["NET_BIND_SERVICE", "net_admin"] });
  assert.deepEqual(s.ambient, ["CAP_NET_BIND_SERVICE", "CAP_NET_ADMIN"]);
  assert.deepEqual(s.inheritable, s.ambient);
  for (const set of [s.bounding, s.effective, s.permitted]) assert.ok(set.includes("CAP_NET_ADMIN"));
});

test("unknown names are invalid argument naming the name and field", () => {
  assert.throws(() => caps(["NET_WIZARD"]), invalid("NET_WIZARD", "add_capabilities"));
  assert.throws(() => caps([], ["CAP_FOO"]), invalid("CAP_FOO", "drop_capabilities"));
  assert.throws(() => caps([], [], { ambient: ["ALL"] }), invalid("ALL", "add_ambient_capabilities"));
  assert.throws(() => validateCapabilities({ addCapabilities: ["SYS_ADMIN", "bogus"] }), invalid("bogus"));
  validateCapabilities({ addCapabilities: ["ALL"], dropCapabilities: ["all"] });
});

test("capability masks round-trip with /proc/<pid>/status format", () => {
  // containerd's default set is the well-known a80425fb
  assert.equal(capabilityMask(DEFAULT_CAPABILITIES), "00000000a80425fb");
  assert.deepEqual(capabilitiesFromMask("00000000a80425fb").sort(), [...DEFAULT_CAPABILITIES].sort());
  assert.equal(capabilityMask(ALL_CAPABILITIES), "000001ffffffffff");
});
