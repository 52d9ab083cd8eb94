// Hostile layers for berth's image attack tests (conformance/suite/image-attacks.test.ts):
// xattr-name injection through both pax spellings, decompression bombs, header floods, deep
// implied directories, oversized extended headers, and a legitimate layer of device nodes,
// FIFOs and xattrs that must still unpack exactly.
import { gzipSync } from "node:zlib";
import { type Blob, sha256 } from "./oci-image.ts";
import { buildTar, tarHeader, type TarFixtureEntry } from "./tar-writer.ts";

export const GZIP_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip";
/** A well-formed diff id for layers that must fail before their diff id is ever checked. */
export const UNCHECKED_DIFF_ID = "sha256:" + "0".repeat(64);

/**
 * An xattr name that, written into a `setfattr --restore` dump, ends the current file's
 * block and starts one for `victim` (an absolute host path) that sets user.pwned there.
 */
export function injectionName(victim: string): string {
  return `user.a\n\n# file: ${victim}\nuser.pwned`;
}

/** Layers that carry the injection name through SCHILY.xattr.* and LIBARCHIVE.xattr.*. */
export function xattrInjectionLayers(victim: string): Record<string, TarFixtureEntry[]> {
  const evil = injectionName(victim);
  return {
    "schily-injection": [{ name: "etc/", type: "dir" }, { name: "etc/target", data: "in layer", pax: { [`SCHILY.xattr.${evil}`]: "0x01" } }],
    // libarchive percent-encodes the name and base64-encodes the value.
    "libarchive-injection": [{ name: "etc/", type: "dir" }, { name: "etc/target", data: "in layer", pax: { [`LIBARCHIVE.xattr.${encodeURIComponent(evil)}`]: Buffer.from("1").toString("base64") } }],
    "trusted-overlay": [{ name: "d/", type: "dir", pax: { "SCHILY.xattr.trusted.overlay.redirect": "/etc" } }],
    "security-selinux": [{ name: "f", data: "x", pax: { "SCHILY.xattr.security.selinux": "system_u:object_r:shadow_t:s0" } }],
    "posix-acl": [{ name: "f", data: "x", pax: { "SCHILY.xattr.system.posix_acl_access": Buffer.from("02000000", "hex") } }],
    "nul-in-name": [{ name: "f", data: "x", pax: { "LIBARCHIVE.xattr.user.a%00b": Buffer.from("1").toString("base64") } }],
    "user-on-fifo": [{ name: "p", type: "fifo", xattrs: { "user.x": "1" } }],
  };
}

const padTo512 = (b: Buffer) => Buffer.concat([b, Buffer.alloc((512 - (b.length % 512)) % 512)]);

/**
 * A gzip bomb: one tar header announcing a `bytes`-long file, then `bytes` of zeros as
 * repeated gzip members of 16 MiB each (gzip allows concatenated members). About 16 KiB of
 * compressed data per 16 MiB.
 */
export function gzipBomb(bytes: number): Blob & { diffId: string } {
  const chunk = 16 << 20;
  const member = gzipSync(Buffer.alloc(chunk), { level: 9 });
  const parts = [gzipSync(tarHeader("zeros", "0", bytes))];
  for (let left = bytes; left > 0; left -= chunk) parts.push(member);
  const data = Buffer.concat(parts);
  return { digest: sha256(data), size: data.length, mediaType: GZIP_LAYER, data, diffId: UNCHECKED_DIFF_ID };
}

/** `count` empty-file headers (all named "f", 2048 to a gzip member): a small gzip of many entries. */
export function headerFlood(count: number): Blob & { diffId: string } {
  const per = 2048;
  const block = Buffer.concat(Array.from({ length: per }, () => tarHeader("f", "0", 0)));
  const member = gzipSync(block, { level: 9 });
  const parts: Buffer[] = [];
  for (let n = 0; n < count; n += per) parts.push(member);
  const data = Buffer.concat(parts);
  return { digest: sha256(data), size: data.length, mediaType: GZIP_LAYER, data, diffId: UNCHECKED_DIFF_ID };
}

/** `roots` files each `depth` directories deep: few entries that imply many directories. */
export function deepDirs(roots: number, depth: number): TarFixtureEntry[] {
  return Array.from({ length: roots }, (_, i) => ({ name: `r${i}/` + "a/".repeat(depth) + "f", data: "deep" }));
}

/** A tar whose first entry has a pax extended header of `bytes` bytes (one long comment record). */
export function oversizedPax(bytes: number): Buffer {
  const value = "c".repeat(bytes);
  const body = ` comment=${value}\n`;
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  const rec = Buffer.from(String(len) + body);
  return Buffer.concat([tarHeader("PaxHeaders/f", "x", rec.length), padTo512(rec), tarHeader("f", "0", 0), Buffer.alloc(1024)]);
}

/** A tar whose first entry has a GNU long name (L) of `bytes` bytes. */
export function oversizedLongName(bytes: number): Buffer {
  const name = Buffer.from("n".repeat(bytes) + "\0");
  return Buffer.concat([tarHeader("././@LongLink", "L", name.length), padTo512(name), tarHeader("f", "0", 0), Buffer.alloc(1024)]);
}

/** `n` global pax headers of 512 KiB each with distinct keys: together over the global limit. */
export function globalPaxFlood(n: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const body = ` SCHILY.xattr.user.k${i}=${"v".repeat(512 << 10)}\n`;
    let len = body.length + 1;
    while (String(len).length + body.length !== len) len = String(len).length + body.length;
    const rec = Buffer.from(String(len) + body);
    parts.push(tarHeader("GlobalHead", "g", rec.length), padTo512(rec));
  }
  parts.push(tarHeader("f", "0", 0), Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** One global pax header of `keys` short distinct keys (`prefix` + a number, empty values), then `files` empty files. */
export function globalPaxKeyFlood(keys: number, files = 20, prefix = "SCHILY.xattr.user."): Buffer {
  const recs: string[] = [];
  for (let i = 0; i < keys; i++) {
    const body = ` ${prefix}${i.toString(36)}=\n`;
    let len = body.length + 1;
    while (String(len).length + body.length !== len) len = String(len).length + body.length;
    recs.push(String(len) + body);
  }
  const rec = Buffer.from(recs.join(""));
  const parts: Buffer[] = [tarHeader("GlobalHead", "g", rec.length), padTo512(rec)];
  for (let i = 0; i < files; i++) parts.push(tarHeader(`f${i}`, "0", 0));
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

export const CAPABILITY = Buffer.from("0100000200200000000000000000000000000000", "hex"); // cap_net_bind_service=ep
export const USER_VALUE = Buffer.from([0x00, 0xff, 0x0a, 0x23, 0x20]); // NUL, 0xff, newline, "# "

/** A legitimate layer: device nodes, FIFOs, security.capability and user.* xattrs in both spellings. */
export function deviceLayer(): TarFixtureEntry[] {
  return [
    { name: "dev/", type: "dir", mode: 0o755, xattrs: { "user.dir": "on a dir" } },
    { name: "dev/null", type: "char", devmajor: 1, devminor: 3, mode: 0o666, mtime: 1_600_000_000 },
    { name: "dev/loop0", type: "block", devmajor: 7, devminor: 0, mode: 0o660, uid: 0, gid: 6 },
    { name: "dev/pipe", type: "fifo", mode: 0o620, uid: 1000, gid: 1000, mtime: 1_500_000_000 },
    { name: "dev/null-link", type: "hardlink", linkname: "dev/null" },
    { name: "bin/", type: "dir" },
    { name: "bin/ping", data: "#!/bin/sh\n", mode: 0o755, xattrs: { "security.capability": CAPABILITY, "user.schily": USER_VALUE } },
    { name: "bin/lib", data: "lib\n", pax: { "LIBARCHIVE.xattr.user.lib%20name": USER_VALUE.toString("base64") } },
    { name: "gone", data: "removed by the next layer\n" },
    { name: "opq/", type: "dir" },
    { name: "opq/old", data: "old\n" },
  ];
}

/** The layer on top of deviceLayer: a whiteout (char 0:0) and an opaque directory (trusted.overlay.opaque). */
export function whiteoutLayer(): TarFixtureEntry[] {
  return [
    { name: ".wh.gone", data: "" },
    { name: "opq/", type: "dir" },
    { name: "opq/.wh..wh..opq", data: "" },
    { name: "opq/new", data: "new\n" },
  ];
}

export { buildTar };
