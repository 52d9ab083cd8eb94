// Builds small OCI test images from busybox-static and pushes them to a test registry:
// single and multi-layer, whiteouts and opaque dirs, hard links, a setuid binary, xattrs,
// FIFOs and device nodes, an image with USER, an index with several platforms, gzip, zstd and
// plain layers, a Docker schema2 image, and breakout fixtures that try to escape the layer.
import { readFileSync } from "node:fs";
import { buildTar, type TarFixtureEntry } from "./tar-writer.ts";
import { type BuiltImage, buildImage, buildIndex, layerBlob } from "./oci-image.ts";
import { pushBlob, pushImage, pushManifest, type PushTarget } from "./push.ts";

export const CAPABILITY = Buffer.from("0100000200200000000000000000000000000000", "hex"); // cap_net_bind_service=ep
export const USER_XATTR = Buffer.from([0x76, 0x00, 0xff, 0x0a]);

export function baseLayerEntries(): TarFixtureEntry[] {
  const busybox = readFileSync("/usr/bin/busybox");
  return [
    { name: "bin/", type: "dir" },
    { name: "bin/busybox", data: busybox, mode: 0o755 },
    { name: "bin/sh", type: "symlink", linkname: "busybox" },
    { name: "bin/ls", type: "symlink", linkname: "/bin/busybox" },
    { name: "bin/cat", type: "hardlink", linkname: "bin/busybox" },
    { name: "etc/", type: "dir" },
    { name: "etc/passwd", data: "root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www-data:/var/www:/bin/sh\nu1003:x:1003:100::/home/u:/bin/sh\n" },
    { name: "etc/group", data: "root:x:0:\nwww-data:x:33:\nusers:x:100:\n" },
    { name: "tmp/", type: "dir", mode: 0o1777 },
    { name: "root/", type: "dir", mode: 0o700 },
  ];
}

export function multiLayer2(): TarFixtureEntry[] {
  return [
    { name: "data/", type: "dir", mode: 0o750, uid: 33, gid: 33, mtime: 1_600_000_000 },
    { name: "data/file", data: "hello\n", uid: 1003, gid: 100, mode: 0o640, mtime: 1_500_000_000 },
    { name: "data/hardlink", type: "hardlink", linkname: "data/file" },
    { name: "data/cap", data: "cap\n", mode: 0o755, xattrs: { "security.capability": CAPABILITY, "user.berth": USER_XATTR } },
    { name: "data/fifo", type: "fifo", mode: 0o600 },
    { name: "data/null", type: "char", devmajor: 1, devminor: 3, mode: 0o666 },
    { name: "data/gone", data: "soon removed\n" },
    { name: "data/link-abs", type: "symlink", linkname: "/etc/passwd" },
    { name: "bin/suid", data: "#!/bin/sh\n", mode: 0o4755, uid: 0, gid: 0 },
    { name: "bin/sgid-dir/", type: "dir", mode: 0o2775 },
    { name: "opq/", type: "dir" },
    { name: "opq/old", data: "old\n" },
    { name: "deep/" + "d".repeat(60) + "/" + "e".repeat(60) + "/long-name-file", data: "long\n" },
  ];
}

export function multiLayer3(): TarFixtureEntry[] {
  return [
    { name: "data/.wh.gone", data: "" },
    { name: "opq/", type: "dir" },
    { name: "opq/.wh..wh..opq", data: "" },
    { name: "opq/new", data: "new\n" },
  ];
}

/** Breakout fixtures; `outside` is an absolute directory the layer must never touch. */
export function breakoutLayers(outside: string): Record<string, TarFixtureEntry[]> {
  const up = "../".repeat(24) + outside.replace(/^\/+/, "");
  return {
    dotdot: [{ name: "ok", data: "fine" }, { name: `${up}/dotdot`, data: "escaped" }],
    absolute: [{ name: "ok", data: "fine" }, { name: `${outside}/absolute`, data: "escaped" }],
    "symlink-parent": [{ name: "ok", data: "fine" }, { name: "esc", type: "symlink", linkname: up }, { name: "esc/symlink", data: "escaped" }],
    "symlink-parent-abs": [{ name: "esc", type: "symlink", linkname: outside }, { name: "esc/symlink-abs", data: "escaped" }],
    hardlink: [{ name: "ok", data: "fine" }, { name: "hl", type: "hardlink", linkname: `${up}/victim` }],
    "hardlink-via-symlink": [{ name: "sl", type: "symlink", linkname: outside }, { name: "hl", type: "hardlink", linkname: "sl/victim" }],
    whiteout: [{ name: "ok", data: "fine" }, { name: `${up}/.wh.victim`, data: "" }],
  };
}

/**
 * Legal-looking layers that replace a directory with a symlink to `outside` after queueing
 * work below it (an xattr, a device node, a FIFO, a directory mtime). They may unpack, but
 * nothing may change outside.
 */
export function swapLayers(outside: string): Record<string, TarFixtureEntry[]> {
  return {
    "xattr-swap": [{ name: "a/", type: "dir" }, { name: "a/victim", data: "in layer", xattrs: { "user.evil": "1" } }, { name: "a", type: "symlink", linkname: outside }],
    "node-swap": [{ name: "b/", type: "dir" }, { name: "b/node", type: "fifo" }, { name: "b/wh-dir/", type: "dir" }, { name: "b/.wh.gone", data: "" }, { name: "b", type: "symlink", linkname: outside }],
    "mtime-swap": [{ name: "c/", type: "dir" }, { name: "c/sub/", type: "dir", mtime: 1000 }, { name: "c", type: "symlink", linkname: outside }],
  };
}

export interface PushedImage { ref: string; repo: string; tag: string; manifestDigest: string; configDigest: string; image: BuiltImage }

export interface Fixtures {
  single: PushedImage;
  multi: PushedImage;
  user: PushedImage;
  docker: PushedImage;
  zstd: PushedImage;
  empty: PushedImage;
  index: { ref: string; digest: string; amd64: PushedImage; arm64: PushedImage };
}

async function push(t: PushTarget, repo: string, tag: string, image: BuiltImage): Promise<PushedImage> {
  await pushImage(t, repo, tag, image);
  return { ref: `${t.address}/${repo}:${tag}`, repo, tag, manifestDigest: image.manifest.digest, configDigest: image.config.digest, image };
}

/** Builds and pushes the standard fixtures under `prefix/` (for example "berth"). */
export async function pushFixtures(t: PushTarget, prefix = "berth"): Promise<Fixtures> {
  const base = layerBlob(buildTar(baseLayerEntries()), "gzip");
  const l2 = layerBlob(buildTar(multiLayer2()), "zstd");
  const l3 = layerBlob(buildTar(multiLayer3()), "none");
  const single = await push(t, `${prefix}/single`, "latest", buildImage([base]));
  const multi = await push(t, `${prefix}/multi`, "latest", buildImage([base, l2, l3], { WorkingDir: "/data", Labels: { a: "b" }, StopSignal: "SIGQUIT" }));
  const user = await push(t, `${prefix}/user`, "latest", buildImage([base], { User: "1003:users" }));
  const docker = await push(t, `${prefix}/docker`, "latest", buildImage([base], { User: "www-data" }, undefined, true));
  const zstd = await push(t, `${prefix}/zstd`, "latest", buildImage([layerBlob(buildTar(baseLayerEntries()), "zstd")], { Labels: { compression: "zstd" } }));
  const empty = await push(t, `${prefix}/empty`, "latest", buildImage([], { Cmd: ["/nothing"] }));
  const marker = (arch: string) => layerBlob(buildTar([{ name: "arch", data: arch }]), "gzip");
  const amd64Img = buildImage([base, marker("amd64")], {}, { os: "linux", architecture: "amd64" });
  const arm64Img = buildImage([base, marker("arm64")], {}, { os: "linux", architecture: "arm64" });
  const v3Img = buildImage([base, marker("amd64-v3")], {}, { os: "linux", architecture: "amd64" });
  const repo = `${prefix}/index`;
  for (const img of [amd64Img, arm64Img, v3Img]) {
    for (const b of img.blobs) await pushBlob(t, repo, b);
    await pushManifest(t, repo, img.manifest.digest, img.manifest);
  }
  const index = buildIndex([
    { image: arm64Img, platform: { os: "linux", architecture: "arm64", variant: "v8" } },
    { image: v3Img, platform: { os: "linux", architecture: "amd64", variant: "v3" } },
    { image: amd64Img, platform: { os: "linux", architecture: "amd64" } },
  ]);
  await pushManifest(t, repo, "latest", index);
  const entry = (img: BuiltImage): PushedImage => ({ ref: `${t.address}/${repo}@${img.manifest.digest}`, repo, tag: "", manifestDigest: img.manifest.digest, configDigest: img.config.digest, image: img });
  return { single, multi, user, docker, zstd, empty, index: { ref: `${t.address}/${repo}:latest`, digest: index.digest, amd64: entry(amd64Img), arm64: entry(arm64Img) } };
}

/** Pushes one image made of `entries` as a single layer; returns its reference. */
export async function pushLayerImage(t: PushTarget, repo: string, entries: TarFixtureEntry[], compression: "gzip" | "zstd" | "none" = "gzip"): Promise<PushedImage> {
  return push(t, repo, "latest", buildImage([layerBlob(buildTar(entries), compression)]));
}

// CLI: node hack/registry/build-images.ts <registry address> [user:password]
if (import.meta.main) {
  const [address, cred] = process.argv.slice(2);
  if (!address) { process.stderr.write("usage: build-images.ts <host:port> [user:password]\n"); process.exit(2); }
  const [username, password] = (cred ?? "").split(":");
  const f = await pushFixtures({ address, ...(cred ? { auth: { username: username!, password: password ?? "" } } : {}) });
  for (const [k, v] of Object.entries(f)) process.stdout.write(`${k}\t${v.ref}\n`);
}
