import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { listConfigFiles, loadNetworkConfig, parseNetworkConfig } from "./cni-config.ts";

const withDir = async (fn: (dir: string) => Promise<void>) => {
  const dir = await mkdtemp(join(tmpdir(), "cni-config-"));
  try { await fn(dir); } finally { await rm(dir, { recursive: true, force: true }); }
};

const list = (name: string) => JSON.stringify({ cniVersion: "1.0.0", name, plugins: [{ type: "bridge" }] });

test("lists only .conflist/.conf/.json files in byte order, skipping dot files", () => withDir(async (dir) => {
  for (const n of ["20-b.conf", "10-a.conflist", "B.json", "a.json", "99.txt", ".10-hidden.conflist", "05-x.conf.bak"]) await writeFile(join(dir, n), "{}");
  assert.deepEqual(listConfigFiles(dir).map((p) => p.slice(dir.length + 1)), ["10-a.conflist", "20-b.conf", "B.json", "a.json"]);
}));

test("a missing conf dir lists nothing and loads no config", () => {
  assert.deepEqual(listConfigFiles("/nonexistent/berth-cni"), []);
  assert.equal(loadNetworkConfig("/nonexistent/berth-cni").config, undefined);
});

test("loads the lexically first file", () => withDir(async (dir) => {
  await writeFile(join(dir, "20-second.conflist"), list("second"));
  await writeFile(join(dir, "10-first.conflist"), list("first"));
  const { config } = loadNetworkConfig(dir);
  assert.equal(config?.name, "first");
  assert.equal(config?.file, join(dir, "10-first.conflist"));
}));

test("an invalid first file is skipped with its reason and the next one is used", () => withDir(async (dir) => {
  await writeFile(join(dir, "00-bad.conflist"), "{not json");
  await writeFile(join(dir, "10-good.conflist"), list("good"));
  const { config, skipped } = loadNetworkConfig(dir);
  assert.equal(config?.name, "good");
  assert.equal(skipped.length, 1);
  assert.match(skipped[0]!.error, /invalid JSON/);
}));

test("directories with a config extension are ignored", () => withDir(async (dir) => {
  await mkdir(join(dir, "00-dir.conflist"));
  await writeFile(join(dir, "10-good.conflist"), list("good"));
  assert.equal(loadNetworkConfig(dir).config?.name, "good");
}));

test("a single-plugin .conf is wrapped into a list", () => {
  const c = parseNetworkConfig("/x/10-a.conf", JSON.stringify({ cniVersion: "0.4.0", name: "n", type: "bridge", bridge: "b0", ipam: { type: "host-local" } }));
  assert.equal(c.name, "n");
  assert.equal(c.cniVersion, "0.4.0");
  assert.deepEqual(c.plugins, [{ type: "bridge", bridge: "b0", ipam: { type: "host-local" } }]);
});

test("a .json file with plugins is read as a list", () => {
  const c = parseNetworkConfig("/x/a.json", list("j"));
  assert.equal(c.plugins.length, 1);
  assert.equal(c.plugins[0]!.type, "bridge");
});

test("disableCheck and a missing cniVersion (0.1.0) are read", () => {
  const c = parseNetworkConfig("/x/a.conflist", JSON.stringify({ name: "n", disableCheck: true, plugins: [{ type: "ptp" }] }));
  assert.equal(c.cniVersion, "0.1.0");
  assert.equal(c.disableCheck, true);
});

test("bad configs are refused with a reason", () => {
  assert.throws(() => parseNetworkConfig("/x/a.conflist", JSON.stringify({ cniVersion: "1.0.0", plugins: [{ type: "b" }] })), /no network "name"/);
  assert.throws(() => parseNetworkConfig("/x/a.conflist", JSON.stringify({ cniVersion: "1.0.0", name: "n", plugins: [] })), /no "plugins"/);
  assert.throws(() => parseNetworkConfig("/x/a.conflist", JSON.stringify({ cniVersion: "9.9.9", name: "n", plugins: [{ type: "b" }] })), /unsupported cniVersion "9.9.9"/);
  assert.throws(() => parseNetworkConfig("/x/a.conflist", JSON.stringify({ cniVersion: "1.0.0", name: "n", plugins: [{ type: "../evil" }] })), /invalid type/);
  assert.throws(() => parseNetworkConfig("/x/a.conf", JSON.stringify({ cniVersion: "1.0.0", name: "n" })), /has no "type"/);
  assert.throws(() => parseNetworkConfig("/x/a.conf", "[]"), /not a JSON object/);
});
