// Reads files inside a container rootfs as the container would see them: symlinks are resolved
// relative to the rootfs and `..` stops at its top, so nothing outside the rootfs is ever read.
import { constants as fsc } from "node:fs";
import { lstat, open, readlink } from "node:fs/promises";
import { posix } from "node:path";

const MAX_LINKS = 255;

/** Resolves `path` inside `root` like chroot(root) would, returning a host path within root. */
export async function secureJoin(root: string, path: string): Promise<string> {
  const rootAbs = posix.resolve(root);
  let pending = path.split("/").filter(Boolean);
  const done: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === ".") continue;
    if (part === "..") { done.pop(); continue; }
    const host = posix.join(rootAbs, ...done, part);
    let st;
    try {
      st = await lstat(host);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") { done.push(part, ...pending.filter((p) => p !== ".")); return normalizeInside(rootAbs, done); }
      throw err;
    }
    if (!st.isSymbolicLink()) { done.push(part); continue; }
    if (++links > MAX_LINKS) throw Object.assign(new Error(`too many symlinks resolving ${path}`), { code: "ELOOP" });
    const target = await readlink(host);
    if (target.startsWith("/")) done.length = 0;
    pending = [...target.split("/").filter(Boolean), ...pending];
  }
  return normalizeInside(rootAbs, done);
}

function normalizeInside(root: string, parts: string[]): string {
  const out: string[] = [];
  for (const p of parts) {
    if (p === "..") out.pop();
    else if (p !== "." && p !== "") out.push(p);
  }
  return posix.join(root, ...out);
}

/** Reads a small text file inside the rootfs; undefined when missing. Refuses non-regular files. */
export async function readRootfsFile(root: string, path: string, maxBytes = 4 << 20): Promise<string | undefined> {
  let host: string;
  try {
    host = await secureJoin(root, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ELOOP") return undefined;
    throw err;
  }
  let fh;
  try {
    fh = await open(host, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR" || code === "ELOOP") return undefined;
    throw err;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) return undefined;
    const buf = Buffer.alloc(Math.min(st.size, maxBytes));
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return buf.subarray(0, bytesRead).toString("utf8");
  } finally {
    await fh.close();
  }
}
