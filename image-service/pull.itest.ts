// Pulls against a real docker-registry on 127.0.0.1: tag, digest, index, schema2, zstd,
// empty images; unpack fidelity; rootfs overlay; restart keeps images; remove/GC.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { lstat, mkdtemp, readFile, readdir, readlink, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createLogger } from "../oci-runtime/foundation/log.ts";
import { startRegistry, type RunningRegistry } from "../hack/registry/registry.ts";
import { CAPABILITY, type Fixtures, pushFixtures, USER_XATTR } from "../hack/registry/build-images.ts";
import { pushBlob, pushManifest } from "../hack/registry/push.ts";
import { ImageService } from "./image-service.ts";

const log = createLogger({}, () => {});

describe("image pull from a loopback docker-registry", () => {
  let reg: RunningRegistry;
  let fx: Fixtures;
  let dir: string;
  let svc: ImageService;
  const mounts: string[] = [];

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "berth-pull-"));
    reg = await startRegistry();
    fx = await pushFixtures({ address: reg.address });
    // Every layer in a worker process (the default keeps layers under 8 MiB in berthd itself,
    // where registry-faults.itest.ts and the conformance suite unpack them).
    svc = new ImageService({ root: path.join(dir, "root"), hostsDir: "", maxConcurrentDownloads: 3, stallTimeoutMs: 10_000, log, unpackOnWorkersFrom: 0 });
    await svc.init();
  });
  after(async () => {
    for (const m of mounts) { try { execFileSync("umount", [m], { stdio: "ignore" }); } catch { /* not mounted */ } }
    await reg?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("pulls by tag and records id, tags, digests, size", async () => {
    const { imageRef } = await svc.pull(fx.single.ref);
    assert.equal(imageRef, fx.single.configDigest);
    const img = svc.get(fx.single.ref)!;
    assert.equal(img.id, fx.single.configDigest);
    assert.deepEqual(img.repoTags, [fx.single.ref]);
    assert.deepEqual(img.repoDigests, [`${reg.address}/${fx.single.repo}@${fx.single.manifestDigest}`]);
    assert.ok(img.size > 500_000);
    assert.deepEqual(img.config.Cmd, ["/bin/sh"]);
    assert.equal(svc.get(img.id)?.id, img.id);
    assert.equal(svc.get(img.id.slice(7, 19))?.id, img.id);
  });

  it("keeps the manifest and config but writes each layer once, as its snapshot (no layer blob, no ingest left)", async () => {
    await svc.pull(fx.single.ref);
    const img = svc.get(fx.single.ref)!;
    const blobs = await readdir(path.join(dir, "root", "content", "blobs", "sha256"));
    assert.ok(blobs.includes(img.id.slice(7)), "the config is stored");
    assert.ok(blobs.includes(img.manifestDigest.slice(7)), "the manifest is stored");
    for (const l of img.layers) assert.ok(!blobs.includes(l.digest.slice(7)), `layer blob ${l.digest} is not kept`);
    assert.deepEqual(await readdir(path.join(dir, "root", "content", "ingest")), []);
    for (const c of img.chainIds) assert.ok((await stat(path.join(dir, "root", "snapshots", c.slice(7), "fs"))).isDirectory(), `snapshot ${c}`);
  });

  it("pulls by digest", async () => {
    const ref = `${reg.address}/${fx.user.repo}@${fx.user.manifestDigest}`;
    const { imageRef } = await svc.pull(ref);
    const img = svc.get(ref)!;
    assert.equal(img.id, imageRef);
    assert.deepEqual(img.repoTags, []);
    assert.equal(img.uid, 1003);
    assert.equal(img.username, "");
  });

  it("selects linux/amd64 without variant from an index", async () => {
    const { imageRef } = await svc.pull(fx.index.ref);
    assert.equal(imageRef, fx.index.amd64.configDigest);
    const img = svc.get(fx.index.ref)!;
    assert.ok(img.repoDigests.includes(`${reg.address}/${fx.index.amd64.repo}@${fx.index.digest}`));
    const top = img.chainIds.at(-1)!;
    assert.equal(await readFile(path.join(dir, "root", "snapshots", top.slice(7), "fs", "arch"), "utf8"), "amd64");
  });

  it("pulls docker schema2, zstd and zero-layer images", async () => {
    const d = await svc.pull(fx.docker.ref);
    assert.equal(svc.get(d.imageRef)?.username, "www-data");
    await svc.pull(fx.zstd.ref);
    const e = await svc.pull(fx.empty.ref);
    assert.deepEqual(svc.get(e.imageRef)?.chainIds, []);
  });

  it("unpacks whiteouts, opaque dirs, hard links, xattrs, setuid, fifos, devices, owners and mtimes", async () => {
    const { imageRef } = await svc.pull(fx.multi.ref);
    const img = svc.get(imageRef)!;
    assert.equal(img.config.WorkingDir, "/data");
    const [, l2, l3] = img.chainIds.map((c) => path.join(dir, "root", "snapshots", c.slice(7), "fs"));
    const file = await lstat(path.join(l2!, "data/file"));
    const hard = await lstat(path.join(l2!, "data/hardlink"));
    assert.equal(file.ino, hard.ino);
    assert.equal(file.uid, 1003);
    assert.equal(file.gid, 100);
    assert.equal(file.mode & 0o7777, 0o640);
    assert.equal(file.mtimeMs, 1_500_000_000_000);
    const d = await lstat(path.join(l2!, "data"));
    assert.equal(d.mtimeMs, 1_600_000_000_000);
    assert.equal(d.uid, 33);
    assert.equal((await lstat(path.join(l2!, "bin/suid"))).mode & 0o7777, 0o4755);
    assert.equal((await lstat(path.join(l2!, "bin/sgid-dir"))).mode & 0o7777, 0o2775);
    assert.ok((await lstat(path.join(l2!, "data/fifo"))).isFIFO());
    const nul = await lstat(path.join(l2!, "data/null"));
    assert.ok(nul.isCharacterDevice());
    assert.equal(nul.rdev, (1 << 8) | 3);
    assert.equal(await readlink(path.join(l2!, "data/link-abs")), "/etc/passwd");
    const xattr = (name: string, p: string) => execFileSync("getfattr", ["--absolute-names", "-e", "hex", "-n", name, p], { encoding: "utf8" }).split("=")[1]!.trim();
    assert.equal(xattr("security.capability", path.join(l2!, "data/cap")), "0x" + CAPABILITY.toString("hex"));
    assert.equal(xattr("user.berth", path.join(l2!, "data/cap")), "0x" + USER_XATTR.toString("hex"));
    const wh = await lstat(path.join(l3!, "data/gone"));
    assert.ok(wh.isCharacterDevice());
    assert.equal(wh.rdev, 0);
    assert.equal(xattr("trusted.overlay.opaque", path.join(l3!, "opq")), "0x79");
    assert.ok((await readdir(path.join(l2!, "deep"))).length === 1);
  });

  it("mounts a container rootfs as an overlay of the layers", async () => {
    const img = svc.get(fx.multi.ref)!;
    const target = path.join(dir, "rootfs-multi");
    mounts.push(target);
    await svc.createRootfs("ctr-multi", img.id, target);
    assert.equal(await readFile(path.join(target, "data/file"), "utf8"), "hello\n");
    await assert.rejects(stat(path.join(target, "data/gone")), { code: "ENOENT" });
    assert.deepEqual((await readdir(path.join(target, "opq"))).sort(), ["new"]);
    assert.ok((await stat(path.join(target, "bin/busybox"))).isFile());
    execFileSync("sh", ["-c", `echo hi > ${target}/written`]);
    assert.equal(await readFile(path.join(svc.upperDir("ctr-multi"), "written"), "utf8"), "hi\n");
    assert.ok((await svc.rootfsUsage("ctr-multi")).inodes >= 2);
    await svc.removeRootfs("ctr-multi", target);
    await assert.rejects(stat(path.join(target, "data")), { code: "ENOENT" });
    await assert.rejects(stat(svc.upperDir("ctr-multi")), { code: "ENOENT" });

    const empty = svc.get(fx.empty.ref)!;
    const t2 = path.join(dir, "rootfs-empty");
    mounts.push(t2);
    await svc.createRootfs("ctr-empty", empty.id, t2);
    assert.deepEqual(await readdir(t2), []);
    await svc.removeRootfs("ctr-empty", t2);
  });

  it("re-mounts an existing rootfs after an unmount (reboot) and keeps its writes", async () => {
    const img = svc.get(fx.single.ref)!;
    const target = path.join(dir, "rootfs-remount");
    mounts.push(target);
    await svc.createRootfs("ctr-remount", img.id, target);
    execFileSync("sh", ["-c", `echo kept > ${target}/kept`]);
    execFileSync("umount", [target]);
    await assert.rejects(stat(path.join(target, "kept")), { code: "ENOENT" });
    await svc.mountRootfs("ctr-remount", img.id, target);
    await svc.mountRootfs("ctr-remount", img.id, target); // already mounted: no-op
    assert.equal(await readFile(path.join(target, "kept"), "utf8"), "kept\n");
    await svc.removeRootfs("ctr-remount", target);
    await svc.removeRootfs("ctr-remount", target); // idempotent
  });

  it("keeps a container's layers through image removal until the rootfs goes", async () => {
    const img = svc.get(fx.index.ref)!;
    const target = path.join(dir, "rootfs-lease");
    mounts.push(target);
    await svc.createRootfs("ctr-lease", img.id, target);
    await svc.remove(img.id);
    assert.equal(svc.get(img.id), undefined);
    const snap = path.join(dir, "root", "snapshots", img.chainIds.at(-1)!.slice(7)); // only this image has it
    await stat(snap);
    assert.ok((await stat(path.join(target, "bin/busybox"))).isFile());
    await svc.removeRootfs("ctr-lease", target);
    await assert.rejects(stat(snap), { code: "ENOENT" });
  });

  it("removing one tag of several untags; a tag moves to the newly pulled image; remove by id drops all", async () => {
    await pushManifest({ address: reg.address }, fx.single.repo, "v2", fx.single.image.manifest);
    const v2 = `${reg.address}/${fx.single.repo}:v2`;
    await svc.pull(v2);
    const img = svc.get(v2)!;
    assert.deepEqual(img.repoTags.sort(), [fx.single.ref, v2].sort());
    await svc.remove(v2);
    assert.equal(svc.get(v2), undefined);
    assert.deepEqual(svc.get(fx.single.ref)!.repoTags, [fx.single.ref]);
    // Moving a tag: v3 first names the user image, then the single image.
    for (const b of fx.user.image.blobs) await pushBlob({ address: reg.address }, fx.single.repo, b);
    await pushManifest({ address: reg.address }, fx.single.repo, "v3", fx.user.image.manifest);
    await svc.pull(`${reg.address}/${fx.single.repo}:v3`);
    await pushManifest({ address: reg.address }, fx.single.repo, "v3", fx.single.image.manifest);
    await svc.pull(`${reg.address}/${fx.single.repo}:v3`);
    assert.equal(svc.get(`${reg.address}/${fx.single.repo}:v3`)!.id, fx.single.configDigest);
    assert.ok(!svc.get(fx.user.configDigest)!.repoTags.includes(`${reg.address}/${fx.single.repo}:v3`));
    await svc.remove(fx.single.configDigest);
    assert.equal(svc.get(fx.single.ref), undefined);
    assert.equal(svc.get(`${reg.address}/${fx.single.repo}:v3`), undefined);
    await svc.pull(fx.single.ref);
  });

  it("reports image filesystem usage that grows with content", async () => {
    const a = await svc.fsInfo();
    assert.equal(a.mountpoint, path.join(dir, "root"));
    assert.ok(a.usedBytes > 1_000_000, String(a.usedBytes));
    assert.ok(a.inodesUsed > 20, String(a.inodesUsed));
  });

  it("mounts an image with more layers than fit in the overlay options by path", async () => {
    const { buildImage, layerBlob } = await import("../hack/registry/oci-image.ts");
    const { buildTar } = await import("../hack/registry/tar-writer.ts");
    const { pushImage } = await import("../hack/registry/push.ts");
    const layers = Array.from({ length: 70 }, (_, i) => layerBlob(buildTar([{ name: `layer-${i}`, data: String(i) }, { name: "top", data: String(i) }])));
    await pushImage({ address: reg.address }, "berth/many", "latest", buildImage(layers));
    const { imageRef } = await svc.pull(`${reg.address}/berth/many:latest`);
    const target = path.join(dir, "rootfs-many");
    mounts.push(target);
    await svc.createRootfs("ctr-many", imageRef, target);
    assert.equal((await readdir(target)).length, 71);
    assert.equal(await readFile(path.join(target, "top"), "utf8"), "69");
    await svc.removeRootfs("ctr-many", target);
    await svc.remove(imageRef);
    assert.deepEqual(await readdir(path.join(dir, "root", "snapshots", "l")), []);
  });

  it("a second service on the same root still has the images", async () => {
    const again = new ImageService({ root: path.join(dir, "root"), hostsDir: "", maxConcurrentDownloads: 3, stallTimeoutMs: 10_000, log });
    await again.init();
    assert.deepEqual(again.list().map((i) => i.id).sort(), svc.list().map((i) => i.id).sort());
    assert.equal(again.get(fx.multi.ref)?.id, fx.multi.configDigest);
  });

  it("remove keeps layers other images share and collects the rest", async () => {
    const multi = svc.get(fx.multi.ref)!;
    const single = svc.get(fx.single.ref)!;
    const snap = (c: string) => path.join(dir, "root", "snapshots", c.slice(7));
    await svc.remove(fx.multi.ref);
    assert.equal(svc.get(fx.multi.ref), undefined);
    await stat(snap(single.chainIds[0]!)); // shared base layer stays
    await assert.rejects(stat(snap(multi.chainIds[2]!)), { code: "ENOENT" });
    await assert.rejects(stat(path.join(dir, "root", "content", "blobs", "sha256", multi.id.slice(7))), { code: "ENOENT" });
    await svc.remove(fx.multi.ref); // unknown: succeeds
  });
});
