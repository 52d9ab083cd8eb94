// Hostile images pulled through a real berthd: xattr-name injection through both pax
// spellings, xattrs in namespaces an image may not set, decompression bombs and header floods
// against small [image] limits, oversized extended headers, every breakout fixture; and a
// legitimate layer of device nodes, FIFOs and xattrs that must unpack exactly.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startBerthd, type Berthd } from "../lib/berthd.ts";
import { codeOf, grpc } from "../lib/cri-client.ts";
import { childProcesses } from "../lib/procs.ts";
import {
  CAPABILITY, deepDirs, deviceLayer, globalPaxKeyFlood, gzipBomb, headerFlood, injectionName, oversizedLongName, oversizedPax, USER_VALUE,
  whiteoutLayer, xattrInjectionLayers,
} from "../../hack/registry/attack-layers.ts";
import { breakoutLayers, swapLayers } from "../../hack/registry/build-images.ts";
import { type Blob, buildImage, layerBlob } from "../../hack/registry/oci-image.ts";
import { pushImage } from "../../hack/registry/push.ts";
import { startRegistry, type RunningRegistry } from "../../hack/registry/registry.ts";
import { buildTar, type TarFixtureEntry } from "../../hack/registry/tar-writer.ts";

const MAX_LAYER_BYTES = 8 << 20;
const MAX_LAYER_ENTRIES = 5000;

/** Every xattr of a host file, names and hex values (getfattr never follows -h here: a plain file). */
function xattrsOf(p: string): string {
  return execFileSync("getfattr", ["--absolute-names", "-d", "-m", "-", "-e", "hex", p], { encoding: "utf8" });
}
function xattr(p: string, name: string): string {
  return execFileSync("getfattr", ["--absolute-names", "-h", "-e", "hex", "-n", name, "--only-values", p]).toString("hex");
}
function rssOf(pid: number): { rss: number; hwm: number } {
  const s = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(s)![1]) * 1024;
  return { rss: kb("VmRSS"), hwm: kb("VmHWM") };
}
/** berth-layer processes that are children of `pid`. */
const helperChildren = (pid: number): string[] => childProcesses([pid], "berth-layer").map((c) => String(c.pid));

describe("image attacks", () => {
  let reg: RunningRegistry;
  let b: Berthd;
  let dir: string;
  let hostsDir: string;
  let outside: string;
  let victim: string;
  let victimXattrs: string;
  let baseline: { rss: number; hwm: number };
  const refs = new Map<string, string>();
  const layerDigests = new Map<string, string>();

  async function push(name: string, layers: (Blob & { diffId: string })[]) {
    const img = buildImage(layers);
    await pushImage({ address: reg.address }, `attack/${name}`, "latest", img);
    refs.set(name, `${reg.address}/attack/${name}:latest`);
    layerDigests.set(name, layers.at(-1)!.digest);
  }
  const pushEntries = (name: string, entries: TarFixtureEntry[]) => push(name, [layerBlob(buildTar(entries), "gzip")]);

  /** Pull must fail FAILED_PRECONDITION with every `needles` in the message, and leave nothing behind. */
  async function refused(name: string, needles: string[]) {
    await assert.rejects(b.client.image.pullImage({ image: { image: refs.get(name)! } }), (e) => {
      const msg = (e as Error).message;
      assert.equal(codeOf(e), grpc.status.FAILED_PRECONDITION, msg);
      for (const n of needles) assert.ok(msg.includes(n), `${name}: message names ${JSON.stringify(n)}: ${msg}`);
      return true;
    });
    const st = await b.client.image.imageStatus({ image: { image: refs.get(name)! } });
    assert.equal(st.image, undefined, `${name}: no image recorded`);
    await nothingLeft(name);
  }

  async function nothingLeft(name: string) {
    const snaps = (await readdir(join(b.root, "snapshots"))).filter((n) => n.startsWith("tmp-"));
    assert.deepEqual(snaps, [], `${name}: no temporary snapshot left`);
    assert.deepEqual(await readdir(join(b.root, "content", "ingest")), [], `${name}: no partial download left`);
    const blobs = await readdir(join(b.root, "content", "blobs", "sha256"));
    assert.ok(!blobs.includes(layerDigests.get(name)!.slice(7)), `${name}: the refused layer blob is not kept`);
    assert.deepEqual(helperChildren(b.proc.pid!), [], `${name}: no berth-layer process left`);
    assert.equal(await readFile(victim, "utf8"), "untouched");
    assert.equal(xattrsOf(victim), victimXattrs, "the host file's xattrs are unchanged");
    assert.deepEqual((await readdir(outside)).sort(), ["victim"]);
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "berth-attacks-"));
    outside = join(dir, "outside");
    await mkdir(outside);
    victim = join(outside, "victim");
    await writeFile(victim, "untouched");
    execFileSync("setfattr", ["-n", "user.keep", "-v", "original", victim]);
    victimXattrs = xattrsOf(victim);
    reg = await startRegistry();
    hostsDir = join(dir, "hosts");
    await mkdir(join(hostsDir, reg.address), { recursive: true });
    await writeFile(join(hostsDir, reg.address, "hosts.toml"), `server = "http://${reg.address}"\n[host."http://${reg.address}"]\n  capabilities = ["pull", "resolve"]\n`);
    for (const [name, entries] of Object.entries({ ...xattrInjectionLayers(victim), ...breakoutLayers(outside), ...swapLayers(outside) })) {
      await pushEntries(name, entries);
    }
    await push("gzip-bomb", [gzipBomb(4 * 1024 ** 3)]);
    await push("header-flood", [headerFlood(1_000_000)]);
    await pushEntries("deep-dirs", deepDirs(30, 200));
    await push("pax-oversized", [layerBlob(oversizedPax(2 << 20), "gzip")]);
    await push("longname-oversized", [layerBlob(oversizedLongName(8192), "gzip")]);
    await push("global-pax-keys", [layerBlob(globalPaxKeyFlood(30_000, 2000), "gzip")]);
    const devices = layerBlob(buildTar(deviceLayer()), "gzip");
    await push("devices", [devices, layerBlob(buildTar(whiteoutLayer()), "zstd")]);
    b = await startBerthd({
      toml: `[registry]\nconfig_path = "${hostsDir}"\n[image]\nmax_layer_bytes = ${MAX_LAYER_BYTES}\nmax_layer_entries = ${MAX_LAYER_ENTRIES}\n`,
    });
    baseline = rssOf(b.proc.pid!);
  });
  after(async () => {
    await b?.cleanup();
    await reg?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  for (const name of ["schily-injection", "libarchive-injection"]) {
    test(`${name}: an xattr name that would inject a setfattr dump block is refused naming the entry and attribute`, async () => {
      await refused(name, ['entry "etc/target"', JSON.stringify(injectionName(victim)), "not printable ASCII"]);
      assert.match(xattrsOf(victim), /user\.keep=0x6f726967696e616c/);
      assert.doesNotMatch(xattrsOf(victim), /pwned/);
    });
  }

  test("xattrs outside the namespaces an image may set are refused naming the attribute", async () => {
    await refused("trusted-overlay", ['entry "d/"', '"trusted.overlay.redirect"', "namespace"]);
    await refused("security-selinux", ['entry "f"', '"security.selinux"', "namespace"]);
    await refused("posix-acl", ['entry "f"', '"system.posix_acl_access"', "namespace"]);
    await refused("nul-in-name", ['entry "f"', '"user.a\\u0000b"', "not printable ASCII"]);
    await refused("user-on-fifo", ['entry "p"', '"user.x"', "only be set on regular files and directories"]);
  });

  test("a gzip bomb (4 GiB of zeros in 4 MiB of gzip) fails at image.max_layer_bytes; memory stays bounded", async (t) => {
    const started = Date.now();
    await refused("gzip-bomb", ["image.max_layer_bytes", String(MAX_LAYER_BYTES)]);
    const ms = Date.now() - started;
    assert.ok(ms < 60_000, "stops early instead of inflating everything");
    const m = rssOf(b.proc.pid!);
    t.diagnostic(`gzip bomb refused in ${ms} ms; berthd RSS ${baseline.rss >> 20} -> ${m.rss >> 20} MiB (peak ${m.hwm >> 20} MiB)`);
    assert.ok(m.rss - baseline.rss < 256 << 20, `berthd RSS grew from ${baseline.rss} to ${m.rss}`);
  });

  test("a million tar headers in a small gzip fail at image.max_layer_entries; memory stays bounded", async (t) => {
    const started = Date.now();
    await refused("header-flood", ["image.max_layer_entries", String(MAX_LAYER_ENTRIES)]);
    const m = rssOf(b.proc.pid!);
    t.diagnostic(`header flood refused in ${Date.now() - started} ms; berthd RSS ${baseline.rss >> 20} -> ${m.rss >> 20} MiB (peak ${m.hwm >> 20} MiB)`);
    assert.ok(m.rss - baseline.rss < 256 << 20, `berthd RSS grew from ${baseline.rss} to ${m.rss}`);
  });

  test("directories implied by deep names count against image.max_layer_entries", async () => {
    await refused("deep-dirs", ["image.max_layer_entries"]);
  });

  test("oversized pax headers and GNU long names are refused naming the limit", async () => {
    await refused("pax-oversized", ["pax extended header", "limit of 1048576 bytes"]);
    await refused("longname-oversized", ["GNU long name", "limit of 4097 bytes"]);
  });

  test("30,000 short global pax keys are refused promptly naming the key limit", async (t) => {
    const started = Date.now();
    await refused("global-pax-keys", ["global pax headers of 30000 keys", "limit of 134 keys"]);
    const ms = Date.now() - started;
    t.diagnostic(`global pax key flood refused in ${ms} ms`);
    assert.ok(ms < 20_000, `refused in ${ms} ms`);
  });

  for (const name of Object.keys(breakoutLayers("/x"))) {
    test(`breakout fixture ${name} is refused naming its entry`, async () => {
      await refused(name, ['entry "']);
    });
  }

  for (const name of Object.keys(swapLayers("/x"))) {
    test(`${name} unpacks without touching the symlink's target`, async () => {
      const before = await stat(outside);
      await b.client.image.pullImage({ image: { image: refs.get(name)! } });
      assert.deepEqual(helperChildren(b.proc.pid!), []);
      assert.equal(await readFile(victim, "utf8"), "untouched");
      assert.equal(xattrsOf(victim), victimXattrs);
      assert.deepEqual((await readdir(outside)).sort(), ["victim"]);
      assert.equal((await stat(outside)).mtimeMs, before.mtimeMs);
      await b.client.image.removeImage({ image: { image: refs.get(name)! } });
    });
  }

  test("a legitimate layer: device nodes, FIFOs, hard links, security.capability and user.* xattrs (both spellings), whiteouts and opaque dirs", async () => {
    const { imageRef } = await b.client.image.pullImage({ image: { image: refs.get("devices")! } });
    assert.match(imageRef, /^sha256:/);
    const cfg = JSON.parse(readFileSync(join(b.root, "content", "blobs", "sha256", imageRef.slice(7)), "utf8")) as { rootfs: { diff_ids: string[] } };
    const l1 = join(b.root, "snapshots", cfg.rootfs.diff_ids[0]!.slice(7), "fs");
    const chain2 = createHash("sha256").update(`${cfg.rootfs.diff_ids[0]} ${cfg.rootfs.diff_ids[1]}`).digest("hex");
    const null_ = await lstat(join(l1, "dev/null"));
    assert.ok(null_.isCharacterDevice());
    assert.equal(null_.rdev, (1 << 8) | 3);
    assert.equal(null_.mode & 0o7777, 0o666);
    assert.equal(null_.mtimeMs, 1_600_000_000_000);
    assert.equal(null_.nlink, 2, "dev/null-link is a hard link to the node");
    const loop = await lstat(join(l1, "dev/loop0"));
    assert.ok(loop.isBlockDevice());
    assert.equal(loop.rdev, 7 << 8);
    assert.deepEqual([loop.mode & 0o7777, loop.gid], [0o660, 6]);
    const fifo = await lstat(join(l1, "dev/pipe"));
    assert.ok(fifo.isFIFO());
    assert.deepEqual([fifo.mode & 0o7777, fifo.uid, fifo.gid, fifo.mtimeMs], [0o620, 1000, 1000, 1_500_000_000_000]);
    assert.equal(xattr(join(l1, "bin/ping"), "security.capability"), CAPABILITY.toString("hex"));
    assert.equal(xattr(join(l1, "bin/ping"), "user.schily"), USER_VALUE.toString("hex"));
    assert.equal(xattr(join(l1, "bin/lib"), "user.lib name"), USER_VALUE.toString("hex"));
    assert.equal(xattr(join(l1, "dev"), "user.dir"), Buffer.from("on a dir").toString("hex"));
    // Second layer: whiteout device and opaque marker set by berth itself.
    const l2 = join(b.root, "snapshots", chain2, "fs");
    const wh = await lstat(join(l2, "gone"));
    assert.ok(wh.isCharacterDevice());
    assert.equal(wh.rdev, 0);
    assert.equal(xattr(join(l2, "opq"), "trusted.overlay.opaque"), Buffer.from("y").toString("hex"));
    assert.deepEqual(helperChildren(b.proc.pid!), []);
  });
});
