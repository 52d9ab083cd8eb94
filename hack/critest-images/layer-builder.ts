// Collects the files of one image layer (with parent directories added
// automatically) and orders them so the tar is deterministic and every hard
// link comes after the file it points at.
import { readFileSync, realpathSync, statSync } from "node:fs";
import { TarType, type TarEntry } from "./tar-writer.ts";

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
