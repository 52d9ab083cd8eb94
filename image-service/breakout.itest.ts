// Malicious layers: every breakout fixture fails the pull with its entry named, writes
// nothing outside the layer and leaves no image or partial snapshot behind.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createLogger } from "../oci-runtime/foundation/log.ts";
import { startRegistry, type RunningRegistry } from "../hack/registry/registry.ts";
import { execFileSync } from "node:child_process";
import { stat } from "node:fs/promises";
import { breakoutLayers, pushLayerImage, swapLayers } from "../hack/registry/build-images.ts";
import { ImageService } from "./image-service.ts";
import { DEFAULT_LAYER_HELPER, encodeNode, encodeXattr, LayerHelper } from "./snapshots/layer-helper.ts";
import { lstat, symlink } from "node:fs/promises";

const log = createLogger({}, () => {});

// Both unpack paths: worker processes (large layers, with more than one CPU) and in-process.
for (const unpackWorkers of [true, false]) describe(`breakout fixtures (${unpackWorkers ? "worker processes" : "in-process"})`, () => {
  let reg: RunningRegistry;
  let dir: string;
  let outside: string;
  let svc: ImageService;
  const refs = new Map<string, string>();

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "berth-breakout-"));
    outside = path.join(dir, "outside");
    await mkdir(outside);
    await writeFile(path.join(outside, "victim"), "untouched");
    reg = await startRegistry();
    for (const [name, entries] of Object.entries({ ...breakoutLayers(outside), ...swapLayers(outside) })) {
      refs.set(name, (await pushLayerImage({ address: reg.address }, `evil/${name}`, entries)).ref);
    }
    svc = new ImageService({ root: path.join(dir, "root"), hostsDir: "", maxConcurrentDownloads: 2, stallTimeoutMs: 10_000, log, unpackOnWorkersFrom: unpackWorkers ? 0 : Infinity });
    await svc.init();
  });
  after(async () => {
    await svc?.close();
    await reg?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  for (const name of Object.keys(swapLayers("/x"))) {
    it(`unpacks ${name} without touching the symlink target`, async () => {
      const before = await stat(outside);
      await svc.pull(refs.get(name)!);
      assert.deepEqual((await readdir(outside)).sort(), ["victim"]);
      assert.equal(await readFile(path.join(outside, "victim"), "utf8"), "untouched");
      const attrs = execFileSync("getfattr", ["--absolute-names", "-d", "-m", "-", path.join(outside, "victim")], { encoding: "utf8" });
      assert.doesNotMatch(attrs, /evil/);
      assert.equal((await stat(outside)).mtimeMs, before.mtimeMs);
      await svc.remove(refs.get(name)!);
    });
  }

  for (const name of Object.keys(breakoutLayers("/x"))) {
    it(`refuses ${name}`, async () => {
      const ref = refs.get(name)!;
      await assert.rejects(svc.pull(ref), (err: Error) => {
        assert.match(err.message, /entry "/, err.message);
        return true;
      });
      assert.deepEqual((await readdir(outside)).sort(), ["victim"]);
      assert.equal(await readFile(path.join(outside, "victim"), "utf8"), "untouched");
      assert.equal(svc.get(ref), undefined);
      const snaps = (await readdir(path.join(dir, "root", "snapshots"))).filter((d) => d !== "containers" && d !== "empty");
      assert.deepEqual(snaps, []);
      assert.deepEqual(await readdir(path.join(dir, "root", "content", "blobs", "sha256")), []);
    });
  }
});

// berth-layer on its own (the real binary): whatever path the writer hands it, it acts only
// beneath the layer root, never through a symlink, and only on namespaces a layer may set.
describe("berth-layer helper", () => {
  let dir: string;
  let layer: string;
  let outside: string;
  const victimAttrs = () => execFileSync("getfattr", ["--absolute-names", "-h", "-d", "-m", "-", "-e", "hex", path.join(outside, "victim")], { encoding: "utf8" });
  let original: string;

  const helperRun = async (rec: Buffer) => {
    const h = new LayerHelper(DEFAULT_LAYER_HELPER, layer, 10_000);
    try {
      await h.run([rec]);
      await h.close();
    } finally {
      await h.abort();
    }
  };

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "berth-layer-helper-"));
    layer = path.join(dir, "layer");
    outside = path.join(dir, "outside");
    await mkdir(path.join(layer, "sub"), { recursive: true });
    await mkdir(outside);
    await writeFile(path.join(outside, "victim"), "untouched");
    await writeFile(path.join(layer, "sub", "file"), "in layer");
    await symlink(outside, path.join(layer, "esc"));
    await symlink(path.join(outside, "victim"), path.join(layer, "victim-link"));
    original = victimAttrs();
  });
  after(async () => { await rm(dir, { recursive: true, force: true }); });

  const refusals: [string, () => Buffer, RegExp][] = [
    ["a symlinked parent", () => encodeXattr("esc/victim", "user.evil", Buffer.from("1")), /setxattr "esc\/victim": cannot open the parent directory beneath the layer/],
    ["a node through a symlinked parent", () => encodeNode({ path: "esc/node", kind: "fifo", mode: 0o600, major: 0, minor: 0, uid: 0, gid: 0, mtime: 0 }), /mknod "esc\/node": cannot open the parent/],
    ["a .. component", () => encodeXattr("sub/../../outside/victim", "user.evil", Buffer.from("1")), /empty, "\." or "\.\." component/],
    ["an absolute path", () => encodeXattr(path.join(outside, "victim"), "user.evil", Buffer.from("1")), /empty, "\." or "\.\." component/],
    ["a name in trusted.*", () => encodeXattr("sub/file", "trusted.overlay.redirect", Buffer.from("/")), /attribute "trusted.overlay.redirect" is not in a namespace a layer may set/],
    ["a name with a newline", () => encodeXattr("sub/file", "user.a\n# file: x", Buffer.from("1")), /not printable ASCII/],
  ];
  for (const [what, rec, re] of refusals) {
    it(`refuses ${what}, naming the path`, async () => {
      await assert.rejects(helperRun(rec()), re);
      assert.equal(victimAttrs(), original);
      assert.deepEqual((await readdir(outside)).sort(), ["victim"]);
    });
  }

  it("sets an xattr on a final symlink itself, never on its target", async () => {
    await helperRun(encodeXattr("victim-link", "trusted.overlay.opaque", Buffer.from("y")));
    assert.equal(victimAttrs(), original);
    const onLink = execFileSync("getfattr", ["--absolute-names", "-h", "-n", "trusted.overlay.opaque", "--only-values", path.join(layer, "victim-link")], { encoding: "utf8" });
    assert.equal(onLink, "y");
  });

  it("makes nodes with owner, mode and time, and refuses to replace an existing one", async () => {
    await helperRun(encodeNode({ path: "sub/zero", kind: "char", mode: 0o640, major: 1, minor: 5, uid: 7, gid: 8, mtime: 1_234_567_890.5 }));
    const st = await lstat(path.join(layer, "sub/zero"));
    assert.ok(st.isCharacterDevice());
    assert.deepEqual([st.rdev, st.mode & 0o7777, st.uid, st.gid, st.mtimeMs], [(1 << 8) | 5, 0o640, 7, 8, 1_234_567_890_500]);
    await assert.rejects(helperRun(encodeNode({ path: "sub/zero", kind: "fifo", mode: 0o600, major: 0, minor: 0, uid: 0, gid: 0, mtime: 0 })), /mknod "sub\/zero": File exists/);
  });
});
