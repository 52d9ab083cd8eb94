// Collects the files of one image layer (with parent directories added
// automatically) and orders them so the tar is deterministic and every hard
// link comes after the file it points at.
import { readFileSync, realpathSync, statSync } from "node:fs";
import { buildTar } from "../registry/tar-writer.ts";

export const TarType = { file: "0", hardlink: "1", symlink: "2", dir: "5" } as const;
export type TarType = (typeof TarType)[keyof typeof TarType];

export interface TarEntry {
  /** Path inside the layer, without a leading "/" ("bin/busybox"); directories may end in "/". */
  path: string;
  type: TarType;
  mode: number;
  uid?: number;
  gid?: number;
  /** File contents (type file). */
  data?: Uint8Array;
  /** Target of a symlink, or the path of the earlier entry a hard link points at. */
  linkname?: string;
}

/** One fixed mtime for every entry (2024-01-01T00:00:00Z) so layers are reproducible. */
export const FIXED_MTIME = 1704067200;

const KIND = { "0": "file", "1": "hardlink", "2": "symlink", "5": "dir" } as const;

/**
 * The layer's tar: entries in the given order, permission bits only, the fixed mtime, directories
 * ending in "/"; encoded by berth's one fixture tar writer (hack/registry/tar-writer.ts). Same entries in, same bytes out.
 */
export function writeTar(entries: readonly TarEntry[]): Buffer {
  return buildTar(entries.map((e) => {
    if (e.path.startsWith("/")) throw new Error(`tar entry path must be relative: ${e.path}`);
    const name = e.type === TarType.dir && !e.path.endsWith("/") ? `${e.path}/` : e.path;
    return {
      name, type: KIND[e.type], mode: e.mode & 0o7777, uid: e.uid ?? 0, gid: e.gid ?? 0, mtime: FIXED_MTIME,
      ...(e.type === TarType.file ? { data: Buffer.from(e.data ?? new Uint8Array()) } : {}),
      ...(e.linkname !== undefined ? { linkname: e.linkname } : {}),
    };
  }));
}

const clean = (p: string) => p.replace(/^\/+/, "").replace(/\/+$/, "");

export class LayerBuilder {
  private readonly byPath = new Map<string, TarEntry>();

  dir(path: string, mode = 0o755, uid = 0, gid = 0): this {
    const p = clean(path);
    this.parents(p);
    this.byPath.set(p, { path: p, type: TarType.dir, mode, uid, gid });
    return this;
  }

  file(path: string, data: string | Uint8Array, mode = 0o644, uid = 0, gid = 0): this {
    const p = clean(path);
    this.parents(p);
    this.byPath.set(p, { path: p, type: TarType.file, mode, uid, gid, data: typeof data === "string" ? Buffer.from(data) : data });
    return this;
  }

  symlink(path: string, target: string): this {
    const p = clean(path);
    this.parents(p);
    this.byPath.set(p, { path: p, type: TarType.symlink, mode: 0o777, linkname: target });
    return this;
  }

  /** A hard link at `path` to the regular file at `target` (both layer paths). */
  hardlink(path: string, target: string): this {
    const p = clean(path);
    this.parents(p);
    this.byPath.set(p, { path: p, type: TarType.hardlink, mode: 0o755, linkname: clean(target) });
    return this;
  }

  /** Copies a host file's contents (following symlinks); keeps its permission bits unless `mode` is given. */
  copyFrom(hostPath: string, path: string, mode?: number): this {
    const real = realpathSync(hostPath);
    return this.file(path, readFileSync(real), mode ?? statSync(real).mode & 0o7777);
  }

  has(path: string): boolean {
    return this.byPath.has(clean(path));
  }

  private parents(p: string): void {
    const parts = p.split("/");
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join("/");
      if (!this.byPath.has(d)) this.byPath.set(d, { path: d, type: TarType.dir, mode: 0o755, uid: 0, gid: 0 });
    }
  }

  /** Directories, then files and symlinks, then hard links; each group sorted by path. */
  entries(): TarEntry[] {
    const rank = (e: TarEntry) => (e.type === TarType.dir ? 0 : e.type === TarType.hardlink ? 2 : 1);
    for (const e of this.byPath.values()) {
      if (e.type === TarType.hardlink && this.byPath.get(e.linkname!)?.type !== TarType.file) {
        throw new Error(`hard link ${e.path} points at ${e.linkname}, which is not a regular file in this layer`);
      }
    }
    return [...this.byPath.values()].sort((a, b) => rank(a) - rank(b) || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }
}
