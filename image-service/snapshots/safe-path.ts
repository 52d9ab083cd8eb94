// Resolving tar entry names inside a layer root. Nothing may resolve outside it:
// absolute names and ".." that climbs above the root are refused, and symlinked parents
// are followed inside the root only (absolute targets mean the layer root).
import { lstatSync, mkdirSync, readlinkSync } from "node:fs";
import path from "node:path";

export class BreakoutError extends Error {
  readonly entry: string;
  constructor(entry: string, why: string) {
    super(`entry ${JSON.stringify(entry)}: ${why}`);
    this.name = "BreakoutError";
    this.entry = entry;
  }
}

/** Splits an entry name into clean components; refuses absolute names and escapes. */
export function cleanEntryName(name: string): string[] {
  if (name.startsWith("/")) throw new BreakoutError(name, "absolute path names are not allowed in a layer");
  if (name.includes("\0")) throw new BreakoutError(name, "name contains a nul byte");
  const out: string[] = [];
  for (const p of name.split("/")) {
    if (p === "" || p === ".") continue;
    if (p === "..") {
      if (!out.length) throw new BreakoutError(name, "path escapes the layer root");
      out.pop();
      continue;
    }
    out.push(p);
  }
  return out;
}

/** Most verified directories remembered at once. */
const MAX_KNOWN = 65536;

/**
 * Maps clean components of a parent directory to a physical directory inside `root`, creating
 * missing directories (mode 0755) unless they are reached through a symlink. Caches verified dirs.
 */
export class DirResolver {
  readonly root: string;
  #known = new Set<string>([""]);
  #onCreate: () => void;
  /** `onCreate` runs before each directory the resolver creates (and may throw to refuse it). */
  constructor(root: string, onCreate: () => void = () => {}) { this.root = root; this.#onCreate = onCreate; }

  forget() { this.#known = new Set([""]); }
  remember(rel: string) { this.#add(rel); }
  isKnown(rel: string) { return this.#known.has(rel); }

  /** The cache of verified directories is bounded: past MAX_KNOWN it starts again (lookups re-verify). */
  #add(rel: string) {
    if (this.#known.size >= MAX_KNOWN) this.forget();
    this.#known.add(rel);
  }

  /** Returns the physical relative path ("" for the root) of the directory `parts`. */
  async resolve(parts: string[], entry: string, create: boolean): Promise<string> {
    const key = parts.join("/");
    if (this.#known.has(key)) return key;
    const cur: string[] = [];
    const queue = [...parts];
    let hops = 0;
    let viaSymlink = false;
    while (queue.length) {
      const p = queue.shift()!;
      if (p === "" || p === ".") continue;
      if (p === "..") {
        if (!cur.length) throw new BreakoutError(entry, "a symlinked parent points outside the layer root");
        cur.pop();
        continue;
      }
      const rel = [...cur, p].join("/");
      if (this.#known.has(rel)) { cur.push(p); continue; }
      const full = path.join(this.root, rel);
      const st = lstatSync(full, { throwIfNoEntry: false });
      if (!st) {
        if (!create || viaSymlink) throw new BreakoutError(entry, `parent ${JSON.stringify(rel)} does not exist in this layer${viaSymlink ? " (reached through a symlink)" : ""}`);
        this.#onCreate();
        mkdirSync(full, 0o755);
        this.#add(rel);
        cur.push(p);
      } else if (st.isDirectory()) {
        if (!viaSymlink) this.#add(rel);
        cur.push(p);
      } else if (st.isSymbolicLink()) {
        if (++hops > 40) throw new BreakoutError(entry, "too many levels of symbolic links");
        const target = readlinkSync(full);
        viaSymlink = true;
        if (target.startsWith("/")) cur.length = 0;
        queue.unshift(...target.split("/"));
      } else {
        throw new BreakoutError(entry, `parent ${JSON.stringify(rel)} is not a directory`);
      }
    }
    const phys = cur.join("/");
    if (!viaSymlink) this.#add(key);
    return phys;
  }
}
