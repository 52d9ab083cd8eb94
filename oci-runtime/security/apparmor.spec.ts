import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { appArmorEnabled, loadedAppArmorProfiles } from "./apparmor.ts";

const dir = mkdtempSync(join(tmpdir(), "berth-apparmor-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("enabled only when the module parameter says Y", () => {
  const y = join(dir, "y"); writeFileSync(y, "Y\n");
  const n = join(dir, "n"); writeFileSync(n, "N\n");
  assert.equal(appArmorEnabled(y), true);
  assert.equal(appArmorEnabled(n), false);
  assert.equal(appArmorEnabled(join(dir, "missing")), false);
});

test("loaded profiles are read from securityfs lines", async () => {
  const p = join(dir, "profiles");
  writeFileSync(p, "docker-default (enforce)\n/usr/bin/man (complain)\ncri-validate-apparmor-test-deny-write (enforce)\n");
  assert.deepEqual([...await loadedAppArmorProfiles(p)], ["docker-default", "/usr/bin/man", "cri-validate-apparmor-test-deny-write"]);
  assert.deepEqual([...await loadedAppArmorProfiles(join(dir, "none"))], []);
});
