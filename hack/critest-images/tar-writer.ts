// A small deterministic tar writer (ustar headers, PAX records for long names)
// for building image layers: same entries in, same bytes out.

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

const BLOCK = 512;

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, "0") + "\0";
}

function put(buf: Buffer, offset: number, width: number, text: string): void {
  const bytes = Buffer.from(text, "utf8");
  if (bytes.length > width) throw new Error(`tar header field too long at offset ${offset}: ${JSON.stringify(text)}`);
  bytes.copy(buf, offset);
}

/** Splits a long path into ustar prefix (<=155) and name (<=100), or undefined when impossible. */
export function splitUstarPath(path: string): { prefix: string; name: string } | undefined {
  if (Buffer.byteLength(path) <= 100) return { prefix: "", name: path };
  for (let i = path.indexOf("/"); i !== -1; i = path.indexOf("/", i + 1)) {
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100 && name !== "") return { prefix, name };
  }
  return undefined;
}

function header(fields: { name: string; prefix: string; mode: number; uid: number; gid: number; size: number; type: string; linkname: string }): Buffer {
  const h = Buffer.alloc(BLOCK);
  put(h, 0, 100, fields.name);
  put(h, 100, 8, octal(fields.mode & 0o7777, 8));
  put(h, 108, 8, octal(fields.uid, 8));
  put(h, 116, 8, octal(fields.gid, 8));
  put(h, 124, 12, octal(fields.size, 12));
  put(h, 136, 12, octal(FIXED_MTIME, 12));
  h.fill(0x20, 148, 156); // checksum field counts as spaces while summing
  put(h, 156, 1, fields.type);
  put(h, 157, 100, fields.linkname);
  put(h, 257, 6, "ustar\0");
  put(h, 263, 2, "00");
  put(h, 329, 8, octal(0, 8));
  put(h, 337, 8, octal(0, 8));
  put(h, 345, 155, fields.prefix);
  let sum = 0;
  for (const b of h) sum += b;
  put(h, 148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
  return h;
}

function padding(size: number): Buffer {
  const rest = size % BLOCK;
  return Buffer.alloc(rest === 0 ? 0 : BLOCK - rest);
}

/** A PAX extended header record "<len> key=value\n", where len counts the whole record. */
export function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
  return `${len}${body}`;
}

function entryBlocks(e: TarEntry): Buffer[] {
  const path = e.type === TarType.dir && !e.path.endsWith("/") ? `${e.path}/` : e.path;
  if (path.startsWith("/")) throw new Error(`tar entry path must be relative: ${path}`);
  const data = e.type === TarType.file ? Buffer.from(e.data ?? new Uint8Array()) : Buffer.alloc(0);
  const linkname = e.linkname ?? "";
  const out: Buffer[] = [];
  let split = splitUstarPath(path);
  const longLink = Buffer.byteLength(linkname) > 100;
  if (!split || longLink) {
    const records = (split ? "" : paxRecord("path", path)) + (longLink ? paxRecord("linkpath", linkname) : "");
    const body = Buffer.from(records, "utf8");
    const paxName = `PaxHeaders/${path.replace(/\/$/, "").split("/").pop()!.slice(0, 80)}`;
    out.push(header({ name: paxName, prefix: "", mode: 0o644, uid: 0, gid: 0, size: body.length, type: "x", linkname: "" }), body, padding(body.length));
    split ??= { prefix: "", name: path.slice(0, 100) };
  }
  out.push(header({
    name: split.name, prefix: split.prefix, mode: e.mode, uid: e.uid ?? 0, gid: e.gid ?? 0,
    size: data.length, type: e.type, linkname: longLink ? linkname.slice(0, 100) : linkname,
  }));
  if (data.length > 0) out.push(data, padding(data.length));
  return out;
}

/** Serialises entries in the given order, followed by the two zero blocks that end an archive. */
export function writeTar(entries: readonly TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) parts.push(...entryBlocks(e));
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}
