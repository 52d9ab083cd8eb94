// A streaming tar reader: ustar, pax (x/g, SCHILY.xattr.* byte-exact, LIBARCHIVE.xattr.*),
// GNU long names (L) and long link names (K), base-256 numbers.
// Everything read is hostile: extended headers, names and xattrs are bounded, and xattr names
// are checked here (see checkXattr) so nothing malformed reaches the layer writer.

export const TarType = {
  file: "0", hardlink: "1", symlink: "2", char: "3", block: "4", dir: "5", fifo: "6", contiguous: "7",
} as const;

export interface TarEntry {
  name: string;
  type: string;
  linkname: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch, possibly fractional (pax). */
  mtime: number;
  devmajor: number;
  devminor: number;
  /** Extended attributes, values byte-exact. */
  xattrs: Map<string, Buffer>;
}

export class TarError extends Error {
  constructor(message: string) { super(message); this.name = "TarError"; }
}

/** A layer over one of berth's size or count limits; `limit` names it. */
export class LayerLimitError extends TarError {
  readonly limit: string;
  constructor(limit: string, message: string) { super(message); this.name = "LayerLimitError"; this.limit = limit; }
}

/** Largest pax extended header (x) or GNU long name/link (L/K) record read into memory. */
export const MAX_EXTENDED_HEADER = 1 << 20;
/** Largest total of global (g) pax records kept for the rest of the archive. */
export const MAX_GLOBAL_PAX = 1 << 20;
/** Global pax keys berth reads; all others in a global (g) record are dropped. */
const GLOBAL_KEYS = new Set(["path", "linkpath", "uid", "gid", "size", "mtime"]);
const isXattrKey = (k: string) => k.startsWith("SCHILY.xattr.") || k.startsWith("LIBARCHIVE.xattr.");
/** Most global pax keys kept (the fixed keys above plus as many xattrs as one entry may carry). */
export const MAX_GLOBAL_PAX_KEYS = GLOBAL_KEYS.size + 128;
/** Longest entry name or link target (Linux PATH_MAX). */
export const MAX_NAME_BYTES = 4096;
/** Most xattrs on one entry, longest xattr name (XATTR_NAME_MAX) and value (XATTR_SIZE_MAX is 64 KiB). */
export const MAX_XATTRS_PER_ENTRY = 128;
export const MAX_XATTR_NAME = 255;
export const MAX_XATTR_VALUE = 64 << 10;

/**
 * Extended attributes an image may carry. `user.*` is unprivileged data. Of `security.*`, only
 * `security.capability` (file capabilities, which docker, buildah and containerd images carry) and
 * `security.ima` (IMA signatures, which containers/storage carries beside it) are meaningful in a
 * layer; `security.selinux` would let an image choose its own label, and the rest belong to LSMs.
 * `trusted.*` is refused: `trusted.overlay.*` would forge overlayfs metadata (opaque dirs,
 * redirects, metacopy), and berth sets `trusted.overlay.opaque` itself from `.wh..wh..opq`.
 * `system.*` (POSIX ACLs) are refused: image builders do not emit them as xattrs.
 */
export function xattrProblem(name: string, value: Buffer): string | undefined {
  if (name.length === 0) return "empty attribute name";
  if (name.length > MAX_XATTR_NAME) return `attribute name longer than ${MAX_XATTR_NAME} bytes`;
  if (!/^[\x20-\x7e]+$/.test(name)) return "attribute name is not printable ASCII";
  const ok = (name.startsWith("user.") && name.length > 5) || name === "security.capability" || name === "security.ima";
  if (!ok) return "attribute is not in a namespace an image may set (user.*, security.capability, security.ima)";
  if (value.length > MAX_XATTR_VALUE) return `attribute value of ${value.length} bytes is longer than ${MAX_XATTR_VALUE}`;
  return undefined;
}

const EMPTY = Buffer.alloc(0);

/**
 * Buffers an async chunk source so exact byte counts can be read. Chunks are queued as they
 * arrive and never joined, except for a read that spans two of them (a header or an extended
 * header), which gets a copy of just its bytes.
 */
export class ByteReader {
  #it: AsyncIterator<Buffer>;
  /** Unread chunks; the first has #off bytes already consumed. */
  #chunks: Buffer[] = [];
  #off = 0;
  #avail = 0;
  #eof = false;
  constructor(src: AsyncIterable<Buffer> | Iterable<Buffer>) {
    this.#it = Symbol.asyncIterator in src ? src[Symbol.asyncIterator]() : (async function* () { yield* src; })();
  }

  async #more(): Promise<boolean> {
    if (this.#eof) return false;
    const r = await this.#it.next();
    if (r.done) { this.#eof = true; return false; }
    if (r.value.length) { this.#chunks.push(r.value); this.#avail += r.value.length; }
    return true;
  }

  /** Bytes buffered and not yet read. */
  get buffered() { return this.#avail; }

  /** Removes n (<= buffered) bytes: a view into one chunk, or a copy when they span chunks. */
  #consume(n: number): Buffer {
    if (n === 0) return EMPTY;
    const first = this.#chunks[0]!;
    let out: Buffer;
    if (first.length - this.#off >= n) {
      out = first.subarray(this.#off, this.#off + n);
      this.#off += n;
      if (this.#off === first.length) { this.#chunks.shift(); this.#off = 0; }
    } else {
      out = Buffer.allocUnsafe(n);
      let w = 0;
      while (w < n) {
        const c = this.#chunks[0]!;
        const k = Math.min(n - w, c.length - this.#off);
        c.copy(out, w, this.#off, this.#off + k);
        w += k;
        this.#off += k;
        if (this.#off === c.length) { this.#chunks.shift(); this.#off = 0; }
      }
    }
    this.#avail -= n;
    return out;
  }

  /** Exactly n bytes, or null at a clean EOF before any byte; throws on a short read. */
  async read(n: number): Promise<Buffer | null> {
    while (this.#avail < n) {
      if (!(await this.#more())) {
        if (this.#avail === 0) return null;
        throw new TarError(`unexpected end of archive (wanted ${n} bytes, have ${this.#avail})`);
      }
    }
    return this.#consume(n);
  }

  /** Exactly n bytes if they are already buffered (no waiting), else undefined. */
  readBuffered(n: number): Buffer | undefined {
    return this.#avail >= n ? this.#consume(n) : undefined;
  }

  /** Streams n bytes as they arrive. */
  async *take(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.#avail === 0 && !(await this.#more())) throw new TarError(`unexpected end of archive (${left} bytes missing)`);
      if (this.#avail === 0) continue;
      const c = this.#consume(Math.min(left, this.#chunks[0]!.length - this.#off));
      left -= c.length;
      yield c;
    }
  }

  /** Discards n bytes. */
  async skip(n: number) {
    let left = n;
    while (left > 0) {
      if (this.#avail === 0 && !(await this.#more())) throw new TarError(`unexpected end of archive (${left} bytes missing)`);
      if (this.#avail === 0) continue;
      left -= this.#consume(Math.min(left, this.#chunks[0]!.length - this.#off)).length;
    }
  }

  /** Consumes everything left (trailing zero blocks, padding). */
  async drain() {
    this.#chunks = [];
    this.#off = 0;
    this.#avail = 0;
    while (await this.#more()) { this.#chunks = []; this.#avail = 0; }
  }
}

const cstr = (b: Buffer) => {
  const z = b.indexOf(0);
  return (z >= 0 ? b.subarray(0, z) : b).toString("utf8");
};

function num(b: Buffer, field: string): number {
  if (b[0]! & 0x80) {
    // base-256: big-endian two's complement with the top bit as a marker
    let v = BigInt(b[0]! & 0x7f);
    if (b[0]! & 0x40) throw new TarError(`negative base-256 number in ${field}`);
    for (let i = 1; i < b.length; i++) v = (v << 8n) | BigInt(b[i]!);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new TarError(`number too large in ${field}`);
    return Number(v);
  }
  const s = cstr(b).replace(/ /g, "");
  if (s === "") return 0;
  if (!/^[0-7]+$/.test(s)) throw new TarError(`invalid octal number ${JSON.stringify(s)} in ${field}`);
  return parseInt(s, 8);
}

function checksumOk(h: Buffer): boolean {
  const want = num(h.subarray(148, 156), "checksum");
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
  return sum === want;
}

/** Parses pax records "len key=value\n"; values stay bytes. */
export function parsePax(buf: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let i = 0;
  while (i < buf.length) {
    const sp = buf.indexOf(0x20, i);
    if (sp < 0) break;
    const len = parseInt(buf.subarray(i, sp).toString("ascii"), 10);
    if (!Number.isInteger(len) || len <= 0 || i + len > buf.length) throw new TarError("malformed pax record");
    const rec = buf.subarray(sp + 1, i + len - 1); // without trailing newline
    const eq = rec.indexOf(0x3d);
    if (eq < 0) throw new TarError("malformed pax record");
    out.set(rec.subarray(0, eq).toString("utf8"), Buffer.from(rec.subarray(eq + 1)));
    i += len;
  }
  return out;
}

const pad = (n: number) => (512 - (n % 512)) % 512;

export interface TarItem {
  entry: TarEntry;
  /** Streams the entry's data. */
  body: () => AsyncGenerator<Buffer>;
  /** The whole data at once when it is already buffered (small files), else undefined: then use body(). */
  buffered: () => Buffer | undefined;
}

const NO_PAX = new Map<string, Buffer>();

/**
 * Reads tar entries; the caller reads each entry's data with `buffered()` or `body()`, or
 * leaves it (it is skipped).
 */
export async function* readTar(src: AsyncIterable<Buffer> | Iterable<Buffer>): AsyncGenerator<TarItem> {
  const r = new ByteReader(src);
  let pax: Map<string, Buffer> | undefined;
  const globalPax = new Map<string, Buffer>();
  let longName: string | undefined;
  let longLink: string | undefined;
  for (;;) {
    const h = await r.read(512);
    if (!h) return; // archives without end blocks still end cleanly
    if (h.every((b) => b === 0)) {
      await r.drain();
      return;
    }
    if (!checksumOk(h)) throw new TarError("invalid tar header checksum");
    const type = String.fromCharCode(h[156]!) === "\0" ? "0" : String.fromCharCode(h[156]!);
    const size = num(h.subarray(124, 136), "size");
    if (type === "x" || type === "g" || type === "L" || type === "K") {
      const max = type === "L" || type === "K" ? MAX_NAME_BYTES + 1 : MAX_EXTENDED_HEADER;
      if (size > max) throw new LayerLimitError("extended header", `${type === "L" || type === "K" ? "GNU long name" : "pax extended header"} of ${size} bytes is larger than the limit of ${max} bytes`);
      const data = (await r.read(size)) ?? Buffer.alloc(0);
      await r.skip(pad(size));
      if (type === "x") pax = parsePax(data);
      else if (type === "g") {
        // Only keys berth reads are kept, their count bounded: every later entry merges them.
        for (const [k, v] of parsePax(data)) if (GLOBAL_KEYS.has(k) || isXattrKey(k)) globalPax.set(k, v);
        if (globalPax.size > MAX_GLOBAL_PAX_KEYS) throw new LayerLimitError("extended header", `global pax headers of ${globalPax.size} keys are more than the limit of ${MAX_GLOBAL_PAX_KEYS} keys`);
        let total = 0;
        for (const [k, v] of globalPax) total += k.length + v.length;
        if (total > MAX_GLOBAL_PAX) throw new LayerLimitError("extended header", `global pax headers of ${total} bytes are larger than the limit of ${MAX_GLOBAL_PAX} bytes`);
      } else if (type === "L") longName = cstr(data);
      else longLink = cstr(data);
      continue;
    }
    const magic = h.subarray(257, 263).toString("latin1");
    let name = cstr(h.subarray(0, 100));
    if (magic === "ustar\0") {
      const prefix = cstr(h.subarray(345, 500));
      if (prefix) name = `${prefix}/${name}`;
    }
    const p = globalPax.size ? new Map([...globalPax, ...(pax ?? [])]) : pax ?? NO_PAX;
    const str = (k: string) => p.get(k)?.toString("utf8");
    const rawXattrs: [string, Buffer, string?][] = [];
    // bsdtar writes every xattr twice: exactly as LIBARCHIVE.xattr.*, and as SCHILY.xattr.* with a
    // percent-encoded name. When the exact spelling is there, it alone counts (as libarchive reads it).
    const libarchive = p.size > 0 && [...p.keys()].some((k) => k.startsWith("LIBARCHIVE.xattr."));
    for (const [k, v] of p) {
      if (k.startsWith("SCHILY.xattr.")) { if (!libarchive) rawXattrs.push([k.slice(13), v]); }
      else if (k.startsWith("LIBARCHIVE.xattr.")) {
        // libarchive percent-encodes the name and base64-encodes the value.
        try {
          rawXattrs.push([decodeURIComponent(k.slice(17)), Buffer.from(v.toString("ascii"), "base64")]);
        } catch {
          rawXattrs.push([k.slice(17), v, "malformed percent-encoding in a LIBARCHIVE.xattr name"]);
        }
      }
    }
    const entry: TarEntry = {
      name: str("path") ?? longName ?? name,
      type,
      linkname: str("linkpath") ?? longLink ?? cstr(h.subarray(157, 257)),
      mode: num(h.subarray(100, 108), "mode"),
      uid: str("uid") !== undefined ? Number(str("uid")) : num(h.subarray(108, 116), "uid"),
      gid: str("gid") !== undefined ? Number(str("gid")) : num(h.subarray(116, 124), "gid"),
      size: str("size") !== undefined ? Number(str("size")) : size,
      mtime: str("mtime") !== undefined ? Number(str("mtime")) : num(h.subarray(136, 148), "mtime"),
      devmajor: magic.startsWith("ustar") ? num(h.subarray(329, 337), "devmajor") : 0,
      devminor: magic.startsWith("ustar") ? num(h.subarray(337, 345), "devminor") : 0,
      xattrs: new Map(),
    };
    pax = undefined; longName = undefined; longLink = undefined;
    for (const [what, v] of [["name", entry.name], ["link target", entry.linkname]] as const) {
      const n = Buffer.byteLength(v);
      if (n > MAX_NAME_BYTES) throw new LayerLimitError("name length", `entry ${JSON.stringify(v.slice(0, 200) + "...")}: ${what} of ${n} bytes is longer than the limit of ${MAX_NAME_BYTES} bytes`);
    }
    if (rawXattrs.length > MAX_XATTRS_PER_ENTRY) {
      throw new LayerLimitError("xattrs per entry", `entry ${JSON.stringify(entry.name)}: ${rawXattrs.length} extended attributes, more than the limit of ${MAX_XATTRS_PER_ENTRY}`);
    }
    for (const [n, v, bad] of rawXattrs) {
      const why = bad ?? xattrProblem(n, v);
      if (why) throw new TarError(`entry ${JSON.stringify(entry.name)}: extended attribute ${JSON.stringify(n)}: ${why}`);
      entry.xattrs.set(n, v);
    }
    if (!Number.isSafeInteger(entry.size) || entry.size < 0) throw new TarError(`invalid size for ${JSON.stringify(entry.name)}`);
    for (const [k, v] of [["uid", entry.uid], ["gid", entry.gid]] as const) {
      if (!Number.isInteger(v) || v < 0 || v > 0xfffffffe) throw new TarError(`entry ${JSON.stringify(entry.name)}: invalid ${k} ${JSON.stringify(str(k) ?? v)}`);
    }
    if (!Number.isFinite(entry.mtime)) throw new TarError(`entry ${JSON.stringify(entry.name)}: invalid mtime ${JSON.stringify(str("mtime"))}`);
    if (type === "S") throw new TarError(`gnu sparse file ${JSON.stringify(entry.name)} is not supported`);
    // Header-only types (links, devices, dirs, fifos) carry no data whatever their size field says.
    const dataSize = "123456".includes(type) ? 0 : entry.size;
    let consumed = false;
    const body = () => { consumed = true; return r.take(dataSize); };
    const buffered = () => {
      if (consumed) return undefined;
      const b = r.readBuffered(dataSize);
      if (b) consumed = true;
      return b;
    };
    yield { entry, body, buffered };
    if (!consumed) await r.skip(dataSize);
    await r.skip(pad(dataSize));
  }
}
