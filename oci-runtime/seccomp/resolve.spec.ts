import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BerthError, Code } from "../foundation/errdefs.ts";
import { chooseSeccomp, resolveSeccomp } from "./resolve.ts";
import { decide } from "../../conformance/lib/seccomp-eval.ts";

const dir = mkdtempSync(join(tmpdir(), "berth-seccomp-resolve-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const blockHostname = join(dir, "block-hostname.json");
writeFileSync(blockHostname, JSON.stringify({ defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["sethostname"], action: "SCMP_ACT_ERRNO" }] }));

const base = { capabilities: ["CAP_CHOWN"], arch: "amd64", kernel: "6.1.0" };
const invalid = (...fragments: string[]) => (e: unknown) => {
  assert.ok(e instanceof BerthError, String(e));
  assert.equal(e.code, Code.INVALID_ARGUMENT);
  for (const f of fragments) assert.ok(e.message.includes(f), `"${e.message}" lacks "${f}"`);
  return true;
};

test("an empty structured profile is RuntimeDefault (critest 'seccomp default')", async () => {
  const s = await resolveSeccomp({ ...base, profile: {} });
  assert.equal(s?.defaultAction, "SCMP_ACT_ERRNO");
  assert.equal(decide(s!, "sethostname"), "errno:1");
  assert.equal((await resolveSeccomp({ ...base, profile: { profileType: "RuntimeDefault" } }))?.defaultAction, "SCMP_ACT_ERRNO");
});

test("RuntimeDefault follows the container's capabilities", async () => {
  const s = await resolveSeccomp({ ...base, capabilities: ["CAP_SYS_ADMIN"], profile: { profileType: 0 } });
  assert.equal(decide(s!, "sethostname"), "allow");
});

test("Unconfined and nothing at all give no filter", async () => {
  assert.equal(await resolveSeccomp({ ...base, profile: { profileType: 1 } }), undefined);
  assert.equal(await resolveSeccomp({ ...base, profile: { profileType: "Unconfined" } }), undefined);
  assert.equal(await resolveSeccomp({ ...base }), undefined);
  assert.equal(await resolveSeccomp({ ...base, legacyPath: "" }), undefined);
});

test("Localhost loads the file; a localhost/ prefix on the ref is tolerated", async () => {
  const s = await resolveSeccomp({ ...base, profile: { profileType: 2, localhostRef: blockHostname } });
  assert.equal(decide(s!, "sethostname"), "errno:1");
  const t = await resolveSeccomp({ ...base, profile: { profileType: "Localhost", localhostRef: `localhost/${blockHostname}` } });
  assert.deepEqual(t, s);
});

test("privileged gets no filter whatever was asked", async () => {
  assert.equal(await resolveSeccomp({ ...base, privileged: true, profile: { profileType: 2, localhostRef: blockHostname } }), undefined);
  assert.equal(await resolveSeccomp({ ...base, privileged: true, profile: {} }), undefined);
  assert.equal(await resolveSeccomp({ ...base, privileged: true, configDefault: "RuntimeDefault" }), undefined);
});

test("legacy strings", async () => {
  for (const s of ["runtime/default", "docker/default"]) {
    assert.deepEqual(chooseSeccomp({ legacyPath: s }), { type: "RuntimeDefault" });
  }
  assert.deepEqual(chooseSeccomp({ legacyPath: "unconfined" }), { type: "Unconfined" });
  assert.deepEqual(chooseSeccomp({ legacyPath: `localhost/${blockHostname}` }), { type: "Localhost", path: blockHostname });
  const s = await resolveSeccomp({ ...base, legacyPath: `localhost/${blockHostname}` });
  assert.equal(decide(s!, "sethostname"), "errno:1");
});

test("a legacy path without localhost/ is refused", () => {
  assert.throws(() => chooseSeccomp({ legacyPath: blockHostname }), invalid("seccomp_profile_path", blockHostname));
  assert.throws(() => chooseSeccomp({ legacyPath: "localhost/" }), invalid("seccomp_profile_path", "localhost_ref"));
});

test("the structured field wins over the legacy one", () => {
  assert.deepEqual(chooseSeccomp({ profile: { profileType: 1 }, legacyPath: "runtime/default" }), { type: "Unconfined" });
});

test("the configured default applies only when nothing is set", () => {
  assert.deepEqual(chooseSeccomp({ configDefault: "RuntimeDefault" }), { type: "RuntimeDefault" });
  assert.deepEqual(chooseSeccomp({ configDefault: "Unconfined" }), { type: "Unconfined" });
  assert.equal(chooseSeccomp({ configDefault: "" }), undefined);
  assert.deepEqual(chooseSeccomp({ configDefault: "RuntimeDefault", profile: { profileType: 1 } }), { type: "Unconfined" });
  assert.deepEqual(chooseSeccomp({ configDefault: "RuntimeDefault", legacyPath: "unconfined" }), { type: "Unconfined" });
  assert.throws(() => chooseSeccomp({ configDefault: "strict" }), invalid("seccomp_default", "strict"));
});

test("bad profile choices are invalid argument naming them", async () => {
  assert.throws(() => chooseSeccomp({ profile: { profileType: 2 } }), invalid("seccomp", "Localhost requires localhost_ref"));
  assert.throws(() => chooseSeccomp({ profile: { profileType: 2, localhostRef: "rel/profile.json" } }), invalid("rel/profile.json", "absolute"));
  assert.throws(() => chooseSeccomp({ profile: { profileType: 0, localhostRef: blockHostname } }), invalid("only allowed with profile type Localhost"));
  assert.throws(() => chooseSeccomp({ profile: { profileType: 7 } }), invalid("unknown profile type 7"));
  const missing = join(dir, "missing.json");
  await assert.rejects(resolveSeccomp({ ...base, profile: { profileType: 2, localhostRef: missing } }), invalid(missing, "does not exist"));
});
