import { test } from "node:test";
import assert from "node:assert/strict";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BerthError, Code } from "../foundation/errdefs.ts";
import type { Spec } from "../bundle-spec/types.ts";
import { applyDevices, loadRegistry, parseQualifiedName, parseSpec, requestedDevices, resolveDevices } from "./cdi.ts";

test("qualified names", () => {
  assert.deepEqual(parseQualifiedName("nvidia.com/gpu=0"), { kind: "nvidia.com/gpu", name: "0" });
  assert.deepEqual(parseQualifiedName("vendor.example/class=all"), { kind: "vendor.example/class", name: "all" });
  for (const bad of ["gpu0", "nvidia.com/gpu", "nvidia.com=0", "/gpu=0", "a/b=../x", "a/b=x y", "a/b="]) assert.equal(parseQualifiedName(bad), undefined, bad);
});

test("requested devices come from CDI_devices and cdi.k8s.io/ annotations, deduplicated and checked", () => {
  assert.deepEqual(requestedDevices([{ name: "a.com/x=1" }], { "cdi.k8s.io/plugin": "a.com/x=1, b.com/y=2", other: "c.com/z=3" }), ["a.com/x=1", "b.com/y=2"]);
  assert.throws(() => requestedDevices([{ name: "nope" }], {}), (e) => e instanceof BerthError && e.code === Code.INVALID_ARGUMENT && e.message.includes('"nope"'));
  assert.throws(() => requestedDevices(Array.from({ length: 129 }, (_, i) => ({ name: `a.com/x=${i}` })), {}), /limit of 128/);
});

test("YAML and JSON specs parse; bad fields are named with the file", () => {
  const y = parseSpec("cdiVersion: 0.6.0\nkind: v.com/c\ndevices:\n  - name: d0\n    containerEdits:\n      env: [A=1]\n      deviceNodes: [{path: /dev/x, type: c, major: 1, minor: 3}]\n", "/s/a.yaml");
  assert.equal(y.devices[0]!.containerEdits.deviceNodes![0]!.major, 1);
  const j = parseSpec(JSON.stringify({ cdiVersion: "0.5.0", kind: "v.com/c", devices: [{ name: "d1", containerEdits: { mounts: [{ hostPath: "/h", containerPath: "/c" }] } }] }), "/s/b.json");
  assert.equal(j.devices[0]!.containerEdits.mounts![0]!.hostPath, "/h");
  for (const [text, re] of [
    ['{"cdiVersion":"0.6.0","kind":"bad","devices":[{"name":"x"}]}', /kind must be/],
    ['{"cdiVersion":"0.6.0","kind":"v.com/c","devices":[]}', /at least one device/],
    ['{"cdiVersion":"0.6.0","kind":"v.com/c","devices":[{"name":"x","containerEdits":{"deviceNodes":[{"path":"rel"}]}}]}', /deviceNodes\[0\]\.path must be an absolute path/],
    ['{"cdiVersion":"0.6.0","kind":"v.com/c","devices":[{"name":"x","containerEdits":{"hooks":[{"hookName":"evil","path":"/x"}]}}]}', /hookName must be one of/],
    ['{"cdiVersion":"0.6.0","kind":"v.com/c","devices":[{"name":"x","containerEdits":{"mounts":[{"hostPath":"/a","containerPath":"/b/../c"}]}}]}', /must not contain "\.\."/],
  ] as const) assert.throws(() => parseSpec(text, "/s/f.json"), (e) => (e as Error).message.startsWith("/s/f.json: ") && re.test((e as Error).message));
  // An alias bomb: each level references the previous one many times.
  const bomb = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]", ...Array.from({ length: 8 }, (_, i) => `l${i + 1}: &l${i + 1} [${Array(10).fill(`*l${i}`).join(", ")}]`)].join("\n");
  assert.throws(() => parseSpec(bomb, "/s/bomb.yaml"), /bomb\.yaml: cannot parse: .*alias/i);
});

test("later directories win; unknown devices name the directories; edits apply", async () => {
  const dir = await mkdtemp(join(tmpdir(), "cdi-"));
  try {
    const spec = (env: string) => JSON.stringify({ cdiVersion: "0.6.0", kind: "v.com/c", devices: [{ name: "d", containerEdits: { env: [env], deviceNodes: [{ path: "/dev/n", type: "c", major: 1, minor: 3, fileMode: 0o666 }], hooks: [{ hookName: "createRuntime", path: "/bin/true" }], additionalGIDs: [7] } }], containerEdits: { mounts: [{ hostPath: "/h", containerPath: "/c", options: ["rbind", "ro"] }] } });
    await writeFile(join(dir, "a.json"), spec("WHO=a"));
    await writeFile(join(dir, "broken.json"), "{");
    await writeFile(join(dir, "loose.json"), spec("WHO=loose").replace('"name":"d"', '"name":"loose"'));
    await chmod(join(dir, "loose.json"), 0o666);
    const d2 = await mkdtemp(join(tmpdir(), "cdi2-"));
    await writeFile(join(d2, "b.json"), spec("WHO=b"));
    const reg = await loadRegistry([dir, d2, "/no/such/dir"]);
    assert.match(reg.problems.join("\n"), /broken\.json: cannot parse/);
    assert.match(reg.problems.join("\n"), /loose\.json: not owned by root or writable by group or others/);
    assert.equal(reg.devices.has("v.com/c=loose"), false, "a spec others may write is not used (its hooks run as root)");
    const [dev] = await resolveDevices([dir, d2], ["v.com/c=d"]);
    assert.deepEqual(dev!.device.containerEdits.env, ["WHO=b"]);
    await assert.rejects(resolveDevices([dir, d2], ["v.com/c=nope"]), (e) => e instanceof BerthError && e.code === Code.INVALID_ARGUMENT
      && e.message.includes('"v.com/c=nope"') && e.message.includes(JSON.stringify(dir)) && e.message.includes("broken.json"));
    const s: Spec = { ociVersion: "1.0.2", process: { user: { uid: 0, gid: 0, additionalGids: [1] }, env: ["WHO=x", "PATH=/bin"], cwd: "/" }, linux: {} };
    await applyDevices(s, [dev!]);
    assert.deepEqual(s.process!.env, ["WHO=b", "PATH=/bin"]);
    assert.deepEqual(s.linux!.devices, [{ type: "c", path: "/dev/n", major: 1, minor: 3, fileMode: 0o666 }]);
    assert.deepEqual(s.linux!.resources!.devices, [{ allow: true, type: "c", major: 1, minor: 3, access: "rwm" }]);
    assert.deepEqual(s.mounts, [{ destination: "/c", source: "/h", type: "bind", options: ["rbind", "ro"] }]);
    assert.deepEqual(s.hooks, { createRuntime: [{ path: "/bin/true" }] });
    assert.deepEqual(s.process!.user.additionalGids, [1, 7]);
    await rm(d2, { recursive: true, force: true });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
