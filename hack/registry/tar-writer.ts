// berth's one tar writer for test fixtures and the critest stand-in images: ustar headers, pax records for long names,
// long link names and xattrs (SCHILY.xattr.*). Entries are described, not read from disk,
// so fixtures can contain things a real filesystem would refuse (breakout names).

export interface TarFixtureEntry {
  name: string;
  type?: "file" | "dir" | "symlink" | "hardlink" | "char" | "block" | "fifo";
  data?: Buffer | string;
  linkname?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  devmajor?: number;
  devminor?: number;
  xattrs?: Record<string, Buffer | string>;
  /** Raw pax records written as given (for example LIBARCHIVE.xattr.* or hostile keys). */
  pax?: Record<string, Buffer | string>;
}

const typeflag = { file: "0", hardlink: "1", symlink: "2", char: "3", block: "4", dir: "5", fifo: "6" } as const;

function octal(buf: Buffer, off: number, len: number, v: number) {
  buf.write(v.toString(8).padStart(len - 1, "0") + "\0", off, len, "ascii");
}

/** A PAX extended header record "<len> key=value\n", where len counts the whole record. */
export function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from("\n")]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

/** One ustar header block (exported for fixtures that stream archives too large to build in memory). */
export function tarHeader(name: string, type: string, size: number, e: Partial<TarFixtureEntry> = {}, linkname = ""): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, "utf8");
  octal(h, 100, 8, e.mode ?? (type === "5" ? 0o755 : 0o644));
  octal(h, 108, 8, e.uid ?? 0);
  octal(h, 116, 8, e.gid ?? 0);
  octal(h, 124, 12, size);
  octal(h, 136, 12, e.mtime ?? 1_700_000_000);
  h.write("        ", 148, 8, "ascii");
  h.write(type, 156, 1, "ascii");
  h.write(linkname, 157, 100, "utf8");
  h.write("ustar\0", 257, 6, "latin1");
  h.write("00", 263, 2, "ascii");
  octal(h, 329, 8, e.devmajor ?? 0);
  octal(h, 337, 8, e.devminor ?? 0);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, "0") + "\0 ", 148, 8, "ascii");
  return h;
}

const pad = (n: number) => Buffer.alloc((512 - (n % 512)) % 512);

/** Builds a whole tar archive in memory. */
export function buildTar(entries: TarFixtureEntry[]): Buffer {
  const out: Buffer[] = [];
  for (const e of entries) {
    const type = typeflag[e.type ?? "file"];
    const data = e.type === undefined || e.type === "file" ? Buffer.from(e.data ?? "") : Buffer.alloc(0);
    const linkname = e.linkname ?? "";
    const pax: Buffer[] = [];
    if (Buffer.byteLength(e.name) > 99) pax.push(paxRecord("path", Buffer.from(e.name)));
    if (Buffer.byteLength(linkname) > 99) pax.push(paxRecord("linkpath", Buffer.from(linkname)));
    for (const [k, v] of Object.entries(e.xattrs ?? {})) pax.push(paxRecord(`SCHILY.xattr.${k}`, Buffer.from(v)));
    for (const [k, v] of Object.entries(e.pax ?? {})) pax.push(paxRecord(k, Buffer.from(v)));
    if (pax.length) {
      const p = Buffer.concat(pax);
      out.push(tarHeader("PaxHeaders/" + e.name.slice(0, 80), "x", p.length, { name: "" }, ""), p, pad(p.length));
    }
    out.push(tarHeader(e.name.slice(0, 99), type, data.length, e, linkname.slice(0, 99)), data, pad(data.length));
  }
  out.push(Buffer.alloc(1024));
  return Buffer.concat(out);
}

const field = (h: Buffer, off: number, len: number) => h.subarray(off, off + len).toString("utf8").replace(/\0.*$/s, "");
const octalField = (h: Buffer, off: number, len: number) => parseInt(field(h, off, len).trim(), 8);

/** Reads back the plain ustar fields of each entry (a PAX header is an entry of type "x"), for specs. */
export function readTar(buf: Buffer) {
  const out: { name: string; type: string; mode: number; uid: number; gid: number; size: number; mtime: number; linkname: string; devmajor: number; data: Buffer; checksumOk: boolean }[] = [];
  let off = 0;
  while (off + 512 <= buf.length) {
    const h = buf.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const size = octalField(h, 124, 12);
    const copy = Buffer.from(h);
    copy.fill(0x20, 148, 156);
    const sum = copy.reduce((a, b) => a + b, 0);
    out.push({
      name: field(h, 0, 100), type: field(h, 156, 1), mode: octalField(h, 100, 8), uid: octalField(h, 108, 8), gid: octalField(h, 116, 8), size,
      mtime: octalField(h, 136, 12), linkname: field(h, 157, 100), devmajor: octalField(h, 329, 8),
      data: buf.subarray(off + 512, off + 512 + size), checksumOk: sum === octalField(h, 148, 8),
    });
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return { entries: out, end: off };
}
