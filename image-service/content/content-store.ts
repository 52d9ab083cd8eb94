// Content-addressed blob store: <root>/blobs/sha256/<hex>. Ingests go to <root>/ingest/
// (a temp file), are verified against digest and size, fsynced and renamed into place.
import type { Hash } from "node:crypto";
import { nodeCrypto } from "../../oci-runtime/foundation/builtins.ts";
import { uniqueSuffix } from "../../oci-runtime/foundation/unique.ts";
import { mkdir, open, readdir, rename, rm, stat, readFile, type FileHandle } from "node:fs/promises";
import { createReadStream } from "node:fs";
import path from "node:path";
import { unavailable, invalidArgument } from "../../oci-runtime/foundation/errdefs.ts";
import { fsyncDir } from "../../oci-runtime/foundation/atomic-file.ts";

const hexOf = (digest: string) => {
  const m = /^sha256:([a-f0-9]{64})$/.exec(digest);
  if (!m) throw invalidArgument(`unsupported digest ${JSON.stringify(digest)}`);
  return m[1]!;
};

/** An in-progress ingest: write chunks, then commit (verify + fsync + rename) or abort. */
export class Ingest {
  readonly digest: string;
  readonly size: number;
  #fh: FileHandle;
  #tmp: string;
  #final: string;
  #hash: Hash = nodeCrypto().createHash("sha256");
  #written = 0;
  #done = false;

  constructor(fh: FileHandle, tmp: string, final: string, digest: string, size: number) {
    this.#fh = fh; this.#tmp = tmp; this.#final = final; this.digest = digest; this.size = size;
  }

  get written() { return this.#written; }

  async write(chunk: Buffer) {
    this.#hash.update(chunk);
    this.#written += chunk.length;
    if (this.#written > this.size) throw unavailable(`blob ${this.digest} is larger than its ${this.size} bytes`);
    let off = 0;
    while (off < chunk.length) off += (await this.#fh.write(chunk, off)).bytesWritten;
  }

  /** Verifies size and digest, fsyncs and renames into the store. */
  async commit() {
    if (this.#done) return;
    this.#done = true;
    try {
      if (this.#written !== this.size) throw unavailable(`blob ${this.digest} has ${this.#written} bytes, expected ${this.size}`);
      const got = "sha256:" + this.#hash.digest("hex");
      if (got !== this.digest) throw unavailable(`blob ${this.digest} failed verification: content has digest ${got}`);
      await this.#fh.sync();
      await this.#fh.close();
      await rename(this.#tmp, this.#final);
      await fsyncDir(path.dirname(this.#final));
    } catch (err) {
      await this.#fh.close().catch(() => {});
      await rm(this.#tmp, { force: true });
      throw err;
    }
  }

  async abort() {
    if (this.#done) return;
    this.#done = true;
    await this.#fh.close().catch(() => {});
    await rm(this.#tmp, { force: true });
  }
}


export class ContentStore {
  readonly root: string;
  #blobs: string;
  #ingest: string;

  constructor(root: string) {
    this.root = root;
    this.#blobs = path.join(root, "blobs", "sha256");
    this.#ingest = path.join(root, "ingest");
  }

  /** Creates directories and removes partial ingests left by a crash. */
  async init() {
    await mkdir(this.#blobs, { recursive: true, mode: 0o700 });
    await this.removePartial();
  }

  /** Removes partial ingests: at start, or once a pull process that died with pulls in flight has left no writer. */
  async removePartial() {
    await rm(this.#ingest, { recursive: true, force: true, maxRetries: 3 });
    await mkdir(this.#ingest, { recursive: true, mode: 0o700 });
  }

  path(digest: string) { return path.join(this.#blobs, hexOf(digest)); }

  async has(digest: string, size?: number): Promise<boolean> {
    try {
      const st = await stat(this.path(digest));
      return size === undefined || st.size === size;
    } catch {
      return false;
    }
  }

  async read(digest: string): Promise<Buffer> { return readFile(this.path(digest)); }

  stream(digest: string): AsyncIterable<Buffer> { return createReadStream(this.path(digest), { highWaterMark: 1 << 20 }); }

  async begin(digest: string, size: number): Promise<Ingest> {
    const final = this.path(digest);
    const tmp = path.join(this.#ingest, `${hexOf(digest)}.${uniqueSuffix()}`);
    const fh = await open(tmp, "wx", 0o644);
    return new Ingest(fh, tmp, final, digest, size);
  }

  /** Stores a whole buffer (manifests, configs) after verifying it. */
  async put(digest: string, data: Buffer) {
    if (await this.has(digest, data.length)) return;
    const ing = await this.begin(digest, data.length);
    try {
      await ing.write(data);
    } catch (err) {
      await ing.abort();
      throw err;
    }
    await ing.commit();
  }

  async delete(digest: string) { await rm(this.path(digest), { force: true }); }

  async list(): Promise<string[]> {
    return (await readdir(this.#blobs)).filter((n) => /^[a-f0-9]{64}$/.test(n)).map((n) => `sha256:${n}`);
  }
}
