// Applies tar entries to an empty layer directory: files, dirs, symlinks (targets verbatim),
// hard links, FIFOs and device nodes, ownership, modes (setuid/setgid/sticky), mtimes and
// byte-exact xattrs; OCI whiteouts become overlay whiteouts and opaque directories.
// File system calls are synchronous (one thread hop per call costs more than the call itself
// for small files); the writer yields to the event loop every few milliseconds so the daemon
// stays responsive. Node has no mknod or xattr API: device nodes, FIFOs and xattrs go to
// berth-layer (layer-helper.ts) as binary records, applied at once, relative to the layer root.
// Per-layer state is bounded: inodes created (entries and the parent directories they imply)
// count against maxEntries, and the directory mtimes kept for the end against MAX_DEFERRED_BYTES.
import {
  chmodSync, closeSync, constants, fchmodSync, write, fchownSync, futimesSync, lchownSync, linkSync, lstatSync, lutimesSync,
  mkdirSync, openSync, symlinkSync, writeSync, type Stats,
} from "node:fs";
import { rm } from "node:fs/promises";
import path from "node:path";
import { encodeNode, encodeXattr, LayerHelper, type NodeRecord } from "./layer-helper.ts";
import { BreakoutError, cleanEntryName, DirResolver } from "./safe-path.ts";
import { LayerLimitError, TarError, TarType, type TarEntry } from "./tar-reader.ts";
import { monotonicMs } from "../../oci-runtime/foundation/clock.ts";

const WH = ".wh.";
const FILE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** Runs a create call; -1 when the name already exists (EEXIST), other errors are thrown. */
function tryCreate(create: () => number): number {
  try {
    return create();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return -1;
    throw err;
  }
}

function writeAll(fd: number, c: Buffer) {
  let off = 0;
  while (off < c.length) off += writeSync(fd, c, off);
}

/**
 * Files at least this large are written through libuv's thread pool (positional writes, a few
 * in flight), so copying their data into the page cache overlaps with decompression, hashing
 * and tar parsing on the event loop; smaller files are written synchronously (a thread hop
 * costs more than the write).
 */
export const ASYNC_WRITE_MIN = 1 << 20;
/** Most bytes of one file waiting in the thread pool's writes (the chunks stay referenced until written). */
export const MAX_WRITE_BYTES_IN_FLIGHT = 4 << 20;

/** Writes `c` whole at `pos` on the thread pool. */
function writeAt(fd: number, c: Buffer, pos: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const step = (off: number) => write(fd, c, off, c.length - off, pos + off, (err, n) => {
      if (err) reject(err);
      else if (off + n >= c.length) resolve();
      else if (n === 0) reject(new Error("write made no progress"));
      else step(off + n);
    });
    step(0);
  });
}

/** Streams a large file's chunks to `fd` with bounded positional writes in flight; returns once all are on disk (page cache). */
async function writeStreamed(fd: number, chunks: AsyncGenerator<Buffer>): Promise<void> {
  const inflight = new Set<Promise<void>>();
  let waiting = 0;
  let pos = 0;
  let failed: { err: unknown } | undefined;
  try {
    for await (const c of chunks) {
      if (failed) break;
      if (!c.length) continue;
      const p = writeAt(fd, c, pos).then(
        () => { waiting -= c.length; inflight.delete(p); },
        (err: unknown) => { waiting -= c.length; inflight.delete(p); failed ??= { err }; },
      );
      inflight.add(p);
      waiting += c.length;
      pos += c.length;
      while (waiting > MAX_WRITE_BYTES_IN_FLIGHT && !failed) await Promise.race(inflight);
    }
  } finally {
    // The fd is closed after this returns: no write may still be pending on it.
    await Promise.all(inflight);
  }
  if (failed) throw failed.err;
}
const OPAQUE = ".wh..wh..opq";
/** Memory for directory mtimes and setgid dirs kept until the layer is complete. */
export const MAX_DEFERRED_BYTES = 128 << 20;

export interface LayerWriterOptions {
  /** Path of the berth-layer helper. */
  helper: string;
  /** Most inodes (entries plus implied parent directories) one layer may create. */
  maxEntries: number;
  /** syncfs for the layer's filesystem (a shared FsSyncer); default: the layer's own helper. */
  sync?: () => Promise<void>;
}

export class LayerWriter {
  readonly root: string;
  #dirs: DirResolver;
  #helper: LayerHelper;
  #maxEntries: number;
  #sync: (() => Promise<void>) | undefined;
  #dirTimes = new Map<string, number>();
  #setgidDirs = new Set<string>();
  #deferredBytes = 0;
  #lastYield = monotonicMs();
  /** Tar entries applied. */
  entries = 0;
  /** Inodes created or replaced: entries plus parent directories they implied. */
  inodes = 0;

  constructor(root: string, opts: LayerWriterOptions) {
    this.root = root;
    this.#maxEntries = opts.maxEntries;
    this.#sync = opts.sync;
    this.#helper = new LayerHelper(opts.helper, root);
    this.#dirs = new DirResolver(root, () => this.#count());
  }

  #count() {
    if (++this.inodes > this.#maxEntries) {
      throw new LayerLimitError("image.max_layer_entries", `layer has more than ${this.#maxEntries} entries (image.max_layer_entries)`);
    }
  }

  #full(rel: string) { return rel ? path.join(this.root, rel) : this.root; }

  /**
   * Applies one entry; `body` (or `buffered`, when it returns the whole data) must be consumed
   * for regular files.
   */
  async apply(entry: TarEntry, body: () => AsyncGenerator<Buffer>, buffered?: () => Buffer | undefined) {
    this.entries++;
    this.#count();
    if (monotonicMs() - this.#lastYield > 5) {
      await new Promise((r) => setImmediate(r));
      this.#lastYield = monotonicMs();
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
    const isFile = entry.type === TarType.file || entry.type === TarType.contiguous;
    // Files and directories are created first and looked at only when the name is taken (EEXIST:
    // O_EXCL and mkdir never follow a symlink in the last component); other types look first.
    let fd = -1;
    let existing: Stats | undefined;
    let made = false;
    if (isFile) fd = tryCreate(() => openSync(full, FILE_FLAGS, 0o600));
    else if (isDir) made = tryCreate(() => { mkdirSync(full, 0o700); return 0; }) === 0;
    if (fd < 0 && !made) {
      existing = lstatSync(full, { throwIfNoEntry: false });
      if (existing && !(isDir && existing.isDirectory())) {
        await rm(full, { recursive: true, force: true });
        if (existing.isDirectory()) this.#dirs.forget();
        this.#purge(rel);
      }
    }
    switch (entry.type) {
      case TarType.dir:
        if (!made && !existing?.isDirectory()) mkdirSync(full, 0o700);
        this.#dirs.remember(rel);
        return this.#meta(rel, entry, true);
      case TarType.file: case TarType.contiguous: {
        if (fd < 0) fd = openSync(full, FILE_FLAGS, 0o600);
        try {
          const whole = buffered?.();
          if (whole) writeAll(fd, whole);
          else if (entry.size >= ASYNC_WRITE_MIN) await writeStreamed(fd, body());
          else for await (const c of body()) writeAll(fd, c);
          if (!(entry.uid === 0 && entry.gid === 0 && !this.#setgidDirs.has(parentRel))) fchownSync(fd, entry.uid, entry.gid);
          fchmodSync(fd, entry.mode & 0o7777); // after chown, which clears setuid
          futimesSync(fd, entry.mtime, entry.mtime);
        } finally {
          closeSync(fd);
        }
        return this.#xattrs(rel, entry);
      }
      case TarType.symlink:
        symlinkSync(entry.linkname, full);
        return this.#meta(rel, entry, false);
      case TarType.hardlink: {
        const target = await this.#linkTarget(entry);
        linkSync(this.#full(target), full);
        return;
      }
      case TarType.char: case TarType.block: case TarType.fifo: {
        const kind = entry.type === TarType.char ? "char" : entry.type === TarType.block ? "block" : "fifo";
        await this.#node({ path: rel, kind, mode: entry.mode, major: entry.devmajor, minor: entry.devminor, uid: entry.uid, gid: entry.gid, mtime: entry.mtime });
        return this.#xattrs(rel, entry);
      }
      default:
        // Unknown entry types (for example vendor extensions) carry nothing to apply.
        return;
    }
  }

  async #node(n: NodeRecord) {
    await this.#helper.run([encodeNode(n)]);
  }

  async #xattrs(rel: string, e: TarEntry) {
    if (!e.xattrs.size) return;
    if (e.type !== TarType.dir && e.type !== TarType.file && e.type !== TarType.contiguous) {
      // The kernel keeps user.* for regular files and directories only; say so instead of EPERM.
      const user = [...e.xattrs.keys()].find((n) => n.startsWith("user."));
      if (user) throw new TarError(`entry ${JSON.stringify(e.name)}: extended attribute ${JSON.stringify(user)}: user.* attributes can only be set on regular files and directories`);
    }
    await this.#helper.run([...e.xattrs].map(([name, value]) => encodeXattr(rel, name, value)));
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
    const st = lstatSync(this.#full(target), { throwIfNoEntry: false });
    if (!st) throw new BreakoutError(entry.name, `hard link target ${JSON.stringify(entry.linkname)} does not exist in this layer`);
    if (st.isDirectory()) throw new BreakoutError(entry.name, `hard link target ${JSON.stringify(entry.linkname)} is a directory`);
    return target;
  }

  async #whiteout(entry: TarEntry, parts: string[]) {
    const base = parts.at(-1)!;
    const parentRel = await this.#dirs.resolve(parts.slice(0, -1), entry.name, true);
    if (base === OPAQUE) {
      await this.#helper.run([encodeXattr(parentRel, "trusted.overlay.opaque", Buffer.from("y"))]);
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
    await this.#node({ path: rel, kind: "char", mode: 0, major: 0, minor: 0, uid: entry.uid, gid: entry.gid, mtime: entry.mtime });
  }

  /**
   * Forgets deferred work (directory times, setgid marks) at or below a path that an entry
   * replaced. Deferred work runs by path at the end of the layer; if a replaced directory had
   * become a symlink, running it would follow that symlink out of the layer.
   */
  #purge(rel: string) {
    const hit = (p: string) => p === rel || p.startsWith(rel + "/");
    for (const d of [...this.#dirTimes.keys()]) if (hit(d)) { this.#dirTimes.delete(d); this.#deferredBytes -= d.length + 64; }
    for (const d of [...this.#setgidDirs]) if (hit(d)) { this.#setgidDirs.delete(d); this.#deferredBytes -= d.length + 64; }
  }

  #defer(rel: string) {
    this.#deferredBytes += rel.length + 64;
    if (this.#deferredBytes > MAX_DEFERRED_BYTES) {
      throw new LayerLimitError("directory metadata", `layer directories need more than ${MAX_DEFERRED_BYTES} bytes of metadata kept until the layer ends`);
    }
  }

  async #meta(rel: string, e: TarEntry, isDir: boolean) {
    const full = this.#full(rel);
    lchownSync(full, e.uid, e.gid);
    if (e.type !== TarType.symlink) chmodSync(full, e.mode & 0o7777); // after chown, which clears setuid
    if (isDir && e.mode & 0o2000 && !this.#setgidDirs.has(rel)) { this.#defer(rel); this.#setgidDirs.add(rel); }
    await this.#xattrs(rel, e);
    if (isDir) {
      if (!this.#dirTimes.has(rel)) this.#defer(rel);
      this.#dirTimes.set(rel, e.mtime);
    } else lutimesSync(full, e.mtime, e.mtime);
  }

  /**
   * Sets directory mtimes (deepest first), then flushes the layer's filesystem (syncfs, one
   * call for the whole layer) and ends the helper. After this the layer may be committed.
   * Returns the milliseconds syncfs took.
   */
  async finish(): Promise<number> {
    const dirs = [...this.#dirTimes].sort((a, b) => b[0].split("/").length - a[0].split("/").length);
    for (const [rel, t] of dirs) {
      lutimesSync(this.#full(rel), t, t);
    }
    const t = monotonicMs();
    if (this.#sync) await this.#sync();
    else await this.#helper.sync();
    const syncMs = monotonicMs() - t;
    await this.#helper.close();
    return syncMs;
  }

  /** Stops the helper on a failed unpack, so nothing writes into the layer while it is removed. */
  async abort() { await this.#helper.abort(); }

  /** Kills the helper at once (an unpack being stopped); a wait for its answer then fails. abort() still follows. */
  kill() { this.#helper.kill(); }
}
