// Applies tar entries to an empty layer directory: files, dirs, symlinks (targets verbatim),
// hard links, FIFOs and device nodes, ownership, modes (setuid/setgid/sticky), mtimes and
// byte-exact xattrs; OCI whiteouts become overlay whiteouts and opaque directories.
// File system calls are synchronous (one thread hop per call costs more than the call itself
// for small files); the writer yields to the event loop every few milliseconds so the daemon
// stays responsive. Node has no mknod or xattr API: nodes are made in one batched `mknod` shell loop and xattrs
// in one `setfattr --restore` run (Debian package `attr`) when the layer is complete.
import {
  chmodSync, closeSync, constants, fchmodSync, fchownSync, futimesSync, lchownSync, linkSync, lstatSync, lutimesSync,
  mkdirSync, openSync, symlinkSync, writeSync,
} from "node:fs";
import { rm, writeFile } from "node:fs/promises";
import { runCommand } from "../../oci-runtime/foundation/run-command.ts";
import path from "node:path";
import { BreakoutError, cleanEntryName, DirResolver } from "./safe-path.ts";
import { TarType, type TarEntry } from "./tar-reader.ts";

const WH = ".wh.";
const OPAQUE = ".wh..wh..opq";

interface PendingNode { rel: string; kind: "c" | "b" | "p"; major: number; minor: number; entry: TarEntry }
interface Xattr { rel: string; name: string; value: Buffer }

export class LayerWriter {
  readonly root: string;
  #dirs: DirResolver;
  #nodes: PendingNode[] = [];
  #nodeSet = new Set<string>();
  #pendingLinks: { rel: string; target: string; entry: string }[] = [];
  #xattrs: Xattr[] = [];
  #dirTimes = new Map<string, number>();
  #created = new Set<string>();
  #setgidDirs = new Set<string>();
  #lastYield = performance.now();
  entries = 0;

  constructor(root: string) {
    this.root = root;
    this.#dirs = new DirResolver(root);
  }

  #full(rel: string) { return rel ? path.join(this.root, rel) : this.root; }

  /** Applies one entry; `body` must be consumed for regular files. */
  async apply(entry: TarEntry, body: () => AsyncGenerator<Buffer>) {
    this.entries++;
    if (performance.now() - this.#lastYield > 5) {
      await new Promise((r) => setImmediate(r));
      this.#lastYield = performance.now();
    }
    const parts = cleanEntryName(entry.name);
    const base = parts.at(-1) ?? "";
    if (base.startsWith(WH)) return this.#whiteout(entry, parts);
    if (!parts.length) {
      if (entry.type !== TarType.dir) throw new BreakoutError(entry.name, "only a directory may name the layer root");
      await this.#meta("", entry, true);
      return;
    }
    const parentRel = await this.#dirs.resolve(parts.slice(0, -1), entry.name, true);
    const rel = parentRel ? `${parentRel}/${base}` : base;
    const full = this.#full(rel);
    const isDir = entry.type === TarType.dir;
    // The layer dir starts empty and only this writer fills it: look only where something may be.
    const existing = this.#created.has(rel) || this.#dirs.isKnown(rel) ? lstatSync(full, { throwIfNoEntry: false }) : undefined;
    if (existing && !(isDir && existing.isDirectory())) {
      await rm(full, { recursive: true, force: true });
      if (existing.isDirectory()) this.#dirs.forget();
      this.#purge(rel);
    } else if (this.#nodeSet.has(rel)) {
      this.#purge(rel);
    }
    this.#created.add(rel);
    switch (entry.type) {
      case TarType.dir:
        if (!existing?.isDirectory()) mkdirSync(full, 0o700);
        this.#dirs.remember(rel);
        return this.#meta(rel, entry, true);
      case TarType.file: case TarType.contiguous: {
        const fd = openSync(full, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
        try {
          for await (const c of body()) {
            let off = 0;
            while (off < c.length) off += writeSync(fd, c, off);
          }
          if (!(entry.uid === 0 && entry.gid === 0 && !this.#setgidDirs.has(parentRel))) fchownSync(fd, entry.uid, entry.gid);
          fchmodSync(fd, entry.mode & 0o7777); // after chown, which clears setuid
          futimesSync(fd, entry.mtime, entry.mtime);
        } finally {
          closeSync(fd);
        }
        for (const [name, value] of entry.xattrs) this.#xattrs.push({ rel, name, value });
        return;
      }
      case TarType.symlink:
        symlinkSync(entry.linkname, full);
        return this.#meta(rel, entry, false);
      case TarType.hardlink: {
        const target = await this.#linkTarget(entry);
        if (this.#nodeSet.has(target)) { this.#pendingLinks.push({ rel, target, entry: entry.name }); return; }
        linkSync(this.#full(target), full);
        return;
      }
      case TarType.char: case TarType.block: case TarType.fifo: {
        const kind = entry.type === TarType.char ? "c" : entry.type === TarType.block ? "b" : "p";
        this.#nodes.push({ rel, kind, major: entry.devmajor, minor: entry.devminor, entry });
        this.#nodeSet.add(rel);
        return;
      }
      default:
        // Unknown entry types (for example vendor extensions) carry nothing to apply.
        return;
    }
  }

  async #linkTarget(entry: TarEntry): Promise<string> {
    let tparts: string[];
    try {
      tparts = cleanEntryName(entry.linkname);
    } catch (err) {
      throw new BreakoutError(entry.name, `hard link target ${JSON.stringify(entry.linkname)}: ${(err as Error).message.replace(/^entry "[^"]*": /, "")}`);
    }
    if (!tparts.length) throw new BreakoutError(entry.name, "hard link to the layer root");
    const tparent = await this.#dirs.resolve(tparts.slice(0, -1), entry.name, false).catch((err) => {
      if (err instanceof BreakoutError) throw new BreakoutError(entry.name, `hard link target ${JSON.stringify(entry.linkname)}: ${err.message.replace(/^entry "[^"]*": /, "")}`);
      throw err;
    });
    const target = tparent ? `${tparent}/${tparts.at(-1)}` : tparts.at(-1)!;
    if (this.#nodeSet.has(target)) return target;
    const st = lstatSync(this.#full(target), { throwIfNoEntry: false });
    if (!st) throw new BreakoutError(entry.name, `hard link target ${JSON.stringify(entry.linkname)} does not exist in this layer`);
    if (st.isDirectory()) throw new BreakoutError(entry.name, `hard link target ${JSON.stringify(entry.linkname)} is a directory`);
    return target;
  }

  async #whiteout(entry: TarEntry, parts: string[]) {
    const base = parts.at(-1)!;
    const parentRel = await this.#dirs.resolve(parts.slice(0, -1), entry.name, true);
    if (base === OPAQUE) {
      this.#xattrs.push({ rel: parentRel, name: "trusted.overlay.opaque", value: Buffer.from("y") });
      return;
    }
    if (base.startsWith(WH + WH)) return; // other AUFS meta files (.wh..wh.plnk, ...)
    const name = base.slice(WH.length);
    if (name === "" || name === "." || name === "..") throw new BreakoutError(entry.name, "invalid whiteout name");
    const rel = parentRel ? `${parentRel}/${name}` : name;
    const existing = lstatSync(this.#full(rel), { throwIfNoEntry: false });
    if (existing) {
      await rm(this.#full(rel), { recursive: true, force: true });
      if (existing.isDirectory()) this.#dirs.forget();
    }
    this.#purge(rel);
    this.#nodes.push({ rel, kind: "c", major: 0, minor: 0, entry: { ...entry, mode: 0 } });
    this.#nodeSet.add(rel);
  }

  /**
   * Forgets deferred work (nodes, links, xattrs, dir times) at or below a path that an entry
   * replaced. Deferred work runs by path at the end of the layer; if a replaced directory had
   * become a symlink, running it would follow that symlink out of the layer.
   */
  #purge(rel: string) {
    const hit = (p: string) => p === rel || p.startsWith(rel + "/");
    this.#nodes = this.#nodes.filter((n) => !hit(n.rel));
    for (const n of [...this.#nodeSet]) if (hit(n)) this.#nodeSet.delete(n);
    this.#pendingLinks = this.#pendingLinks.filter((l) => !hit(l.rel) && !hit(l.target));
    this.#xattrs = this.#xattrs.filter((x) => !hit(x.rel));
    for (const d of [...this.#dirTimes.keys()]) if (hit(d)) this.#dirTimes.delete(d);
    for (const d of [...this.#setgidDirs]) if (hit(d)) this.#setgidDirs.delete(d);
  }

  async #meta(rel: string, e: TarEntry, isDir: boolean) {
    const full = this.#full(rel);
    lchownSync(full, e.uid, e.gid);
    if (e.type !== TarType.symlink) chmodSync(full, e.mode & 0o7777); // after chown, which clears setuid
    if (isDir && e.mode & 0o2000) this.#setgidDirs.add(rel);
    for (const [name, value] of e.xattrs) this.#xattrs.push({ rel, name, value });
    if (isDir) this.#dirTimes.set(rel, e.mtime);
    else lutimesSync(full, e.mtime, e.mtime);
  }

  /** Creates deferred nodes and links, sets xattrs, then directory mtimes (deepest first). */
  async finish() {
    await this.#mknodAll();
    for (const n of this.#nodes) await this.#meta(n.rel, n.entry, false);
    for (const l of this.#pendingLinks) linkSync(this.#full(l.target), this.#full(l.rel));
    await this.#setXattrs();
    const dirs = [...this.#dirTimes].sort((a, b) => b[0].split("/").length - a[0].split("/").length);
    for (const [rel, t] of dirs) {
      lutimesSync(this.#full(rel), t, t);
    }
  }

  async #mknodAll() {
    const script = 'while [ $# -ge 4 ]; do if [ "$1" = p ]; then mknod -- "$4" p || exit 1; else mknod -- "$4" "$1" "$2" "$3" || exit 1; fi; shift 4; done';
    for (let i = 0; i < this.#nodes.length; i += 1000) {
      const args = this.#nodes.slice(i, i + 1000).flatMap((n) => [n.kind, String(n.major), String(n.minor), n.rel]);
      await run("/bin/sh", ["-c", script, "sh", ...args], this.root, "mknod");
    }
  }

  async #setXattrs() {
    if (!this.#xattrs.length) return;
    let dump = "";
    let last: string | undefined;
    for (const x of this.#xattrs) {
      if (x.rel !== last) { dump += `\n# file: ${escapePath(x.rel || ".")}\n`; last = x.rel; }
      dump += `${x.name}=${x.value.length ? "0x" + x.value.toString("hex") : '""'}\n`;
    }
    const file = path.join(path.dirname(this.root), `xattrs-${path.basename(this.root)}.dump`);
    await writeFile(file, dump + "\n");
    try {
      await run("setfattr", ["-h", `--restore=${file}`], this.root, "setfattr");
    } finally {
      await rm(file, { force: true });
    }
  }
}

/** getfattr-style escaping: anything outside a safe set becomes \ooo. */
function escapePath(p: string): string {
  let out = "";
  for (const b of Buffer.from(p, "utf8")) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9._\-/+@:,~%]/.test(c) ? c : "\\" + b.toString(8).padStart(3, "0");
  }
  return out;
}

async function run(cmd: string, args: string[], cwd: string, what: string): Promise<void> {
  const r = await runCommand(cmd, args, { cwd });
  if (r.spawnError) throw new Error(`${what}: cannot run ${cmd}: ${r.spawnError.message}`);
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}): ${r.stderr.trim()}`);
}
