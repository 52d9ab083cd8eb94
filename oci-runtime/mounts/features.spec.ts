import { test } from "node:test";
import assert from "node:assert/strict";
import { chmod, mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mountFeatures, unsearchable, type FsProbe } from "./features.ts";

const good = (dir: string): FsProbe => ({ dir, idmap: "", rro: "", overlayIdmappedLower: "" });
const probes = { state: good("/run/berth"), root: good("/var/lib/berth") };

test("rro comes from the handler's features when listed, else from berth's own clone", () => {
  assert.equal(mountFeatures("runc", { mountOptions: ["ro", "rro"], namespaces: ["user"] }, "", probes).recursiveReadOnly, "runtime");
  assert.equal(mountFeatures("old", { mountOptions: ["ro"], namespaces: ["user"] }, "", probes).recursiveReadOnly, "berth");
  const none = mountFeatures("old", { mountOptions: [] }, "no features command", { ...probes, state: { ...good("/s"), rro: "Invalid argument" } });
  assert.equal(none.recursiveReadOnly, "none");
  assert.match(none.reasons.join("\n"), /lack "rro" \(no features command\) and mount_setattr on \/s failed: Invalid argument/);
});

test("user namespaces need the handler's user namespace and every idmap probe, naming what failed", () => {
  assert.equal(mountFeatures("runc", { mountOptions: [], namespaces: ["user", "mount"] }, "", probes).userNamespaces, true);
  const noUser = mountFeatures("crun", { mountOptions: [], namespaces: ["mount"] }, "", probes);
  assert.equal(noUser.userNamespaces, false);
  assert.match(noUser.reasons.join(), /crun features do not list the "user" namespace/);
  const noOverlay = mountFeatures("runc", { mountOptions: [], namespaces: ["user"] }, "", { ...probes, root: { ...good("/r"), overlayIdmappedLower: "Invalid argument" } });
  assert.equal(noOverlay.userNamespaces, false);
  assert.match(noOverlay.reasons.join(), /overlayfs over an idmapped layer fails on \/r: Invalid argument/);
  const noIdmap = mountFeatures("runc", { mountOptions: [], namespaces: ["user"] }, "", { ...probes, state: { ...good("/s"), idmap: "Operation not permitted" } });
  assert.match(noIdmap.reasons.join(), /idmapped mounts fail on the state directory \/s: Operation not permitted/);
});

test("unsearchable names each directory on the way that others cannot search", async () => {
  const dir = await mkdtemp(join(tmpdir(), "berth-features-spec-"));
  try {
    await mkdir(join(dir, "a", "b"), { recursive: true });
    await chmod(dir, 0o700);
    await chmod(join(dir, "a"), 0o711);
    assert.deepEqual(await unsearchable(join(dir, "a", "b", "not-yet")), [`${dir} (mode 0700)`]);
    await chmod(dir, 0o711);
    assert.deepEqual(await unsearchable(join(dir, "a", "b")), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
