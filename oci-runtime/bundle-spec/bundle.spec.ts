import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { specHasPoststartHooks, writeBundleSyncLater } from "./bundle.ts";
import type { Spec } from "./types.ts";

test("writeBundleSyncLater: config.json is in place when it answers, durable when synced settles, no temp file left", async () => {
  const dir = await mkdtemp(join(tmpdir(), "berth-bundle-"));
  try {
    const bundle = join(dir, "b");
    const spec = { ociVersion: "1.0.2", process: { args: ["sleep", "1"] } } as unknown as Spec;
    const { synced } = await writeBundleSyncLater(bundle, spec);
    assert.deepEqual(JSON.parse(await readFile(join(bundle, "config.json"), "utf8")), spec, "readable before the sync settles");
    await synced;
    assert.deepEqual(await readdir(bundle), ["config.json"]);
    assert.equal((await stat(join(bundle, "config.json"))).mode & 0o777, 0o600);
    assert.equal((await stat(bundle)).mode & 0o777, 0o700);
    // A second write replaces it.
    await (await writeBundleSyncLater(bundle, { ...spec, ociVersion: "1.1.0" } as Spec)).synced;
    assert.equal(JSON.parse(await readFile(join(bundle, "config.json"), "utf8")).ociVersion, "1.1.0");
    assert.deepEqual(await readdir(bundle), ["config.json"]);
    // config.json being a directory: the rename fails, the call rejects and leaves no temp file.
    const bad = join(dir, "bad");
    await writeBundleSyncLater(join(bad), spec).then(({ synced: s }) => s);
    await rm(join(bad, "config.json"));
    await (await import("node:fs/promises")).mkdir(join(bad, "config.json", "x"), { recursive: true });
    await writeFile(join(bad, "config.json", "x", "f"), "");
    await assert.rejects(writeBundleSyncLater(bad, spec));
    assert.deepEqual(await readdir(bad), ["config.json"]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("specHasPoststartHooks: only a spec naming poststart hooks, or text that is no spec, needs the runtime's own start", () => {
  assert.equal(specHasPoststartHooks(JSON.stringify({ ociVersion: "1.0.2" })), false);
  assert.equal(specHasPoststartHooks(JSON.stringify({ hooks: { createRuntime: [{ path: "/h" }] } })), false);
  assert.equal(specHasPoststartHooks(JSON.stringify({ hooks: { poststart: [] } })), false);
  assert.equal(specHasPoststartHooks(JSON.stringify({ hooks: { poststart: [{ path: "/h" }] } })), true);
  assert.equal(specHasPoststartHooks(""), true);
  assert.equal(specHasPoststartHooks("{"), true);
});
