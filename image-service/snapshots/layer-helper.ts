// Talks to berth-layer (helper/berth-layer.c), which makes device nodes and FIFOs and sets
// xattrs inside one layer directory. Records are binary and length-prefixed (see the C file):
// nothing from an image is ever turned into text another program parses. One helper process
// per layer, started on first use; every batch of records waits for its answers, bounded in time.
import { spawn, type ChildProcess } from "node:child_process";

/** Default install location (the directory of config runtime.io_helper). */
export const DEFAULT_LAYER_HELPER = "/usr/local/libexec/berth/berth-layer";
/** Longest wait for the helper's answers to one batch, and for its exit. */
export const HELPER_TIMEOUT_MS = 30_000;
/** Longest wait for syncfs, which writes back the whole layer (gigabytes on a slow disk). */
export const SYNC_TIMEOUT_MS = 600_000;
export const MAX_HELPER_PATH = 4096;
export const MAX_XATTR_NAME = 255;
export const MAX_XATTR_VALUE = 64 << 10;

export class LayerHelperError extends Error {
  constructor(message: string) { super(message); this.name = "LayerHelperError"; }
}

const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFIFO = 0o010000;

function u32(v: number, what: string): Buffer {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new LayerHelperError(`${what} ${v} does not fit in 32 bits`);
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v);
  return b;
}

function str(v: Buffer | string, max: number, what: string): Buffer {
  const b = typeof v === "string" ? Buffer.from(v, "utf8") : v;
  if (b.length > max) throw new LayerHelperError(`${what} of ${b.length} bytes is longer than ${max}`);
  if (b.includes(0)) throw new LayerHelperError(`${what} contains a NUL byte`);
  return Buffer.concat([u32(b.length, what), b]);
}

export interface NodeRecord {
  path: string;
  kind: "char" | "block" | "fifo";
  /** Permission bits (07777). */
  mode: number;
  major: number;
  minor: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch, possibly fractional. */
  mtime: number;
}

/** 'N' record: create a node, then chown, chmod and set its times. */
export function encodeNode(n: NodeRecord): Buffer {
  const type = n.kind === "char" ? S_IFCHR : n.kind === "block" ? S_IFBLK : S_IFIFO;
  const t = Number.isFinite(n.mtime) ? n.mtime : 0;
  const sec = Math.floor(t);
  const nsec = Math.min(999_999_999, Math.max(0, Math.round((t - sec) * 1e9)));
  const i64 = Buffer.alloc(8);
  i64.writeBigInt64LE(BigInt(sec));
  return Buffer.concat([
    Buffer.from("N"), str(n.path, MAX_HELPER_PATH, "path"),
    u32(type | (n.mode & 0o7777), "mode"), u32(n.major, "device major"), u32(n.minor, "device minor"),
    u32(n.uid, "uid"), u32(n.gid, "gid"), i64, u32(nsec, "mtime nanoseconds"),
  ]);
}

/** 'X' record: lsetxattr on the path (the empty path is the layer root). */
export function encodeXattr(path: string, name: string, value: Buffer): Buffer {
  if (value.length > MAX_XATTR_VALUE) throw new LayerHelperError(`xattr ${name} value of ${value.length} bytes is longer than ${MAX_XATTR_VALUE}`);
  return Buffer.concat([Buffer.from("X"), str(path, MAX_HELPER_PATH, "path"), str(name, MAX_XATTR_NAME, "xattr name"), u32(value.length, "xattr value length"), value]);
}

/** One berth-layer process for one layer directory. */
export class LayerHelper {
  readonly binary: string;
  readonly root: string;
  readonly timeoutMs: number;
  #child?: ChildProcess;
  #acks = 0;
  #stderr = "";
  #exited?: { code: number | null; signal: NodeJS.Signals | null; error?: Error };
  #waiter?: () => void;

  constructor(binary: string, root: string, timeoutMs = HELPER_TIMEOUT_MS) {
    this.binary = binary;
    this.root = root;
    this.timeoutMs = timeoutMs;
  }

  #start(): ChildProcess {
    if (this.#child) return this.#child;
    // BERTH_LAYER_PARENT: berth-layer exits at once if its parent died before it asked to die with it.
    const child = spawn(this.binary, [this.root], { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, BERTH_LAYER_PARENT: String(process.pid) } });
    this.#child = child;
    child.stdout!.on("data", (b: Buffer) => { this.#acks += b.length; this.#waiter?.(); });
    child.stderr!.setEncoding("utf8").on("data", (s: string) => { if (this.#stderr.length < 4096) this.#stderr += s; });
    child.stdin!.on("error", () => { /* EPIPE: the exit explains it */ });
    child.on("error", (error) => { this.#exited ??= { code: null, signal: null, error }; this.#waiter?.(); });
    child.on("close", (code, signal) => { this.#exited ??= { code, signal }; this.#waiter?.(); });
    return child;
  }

  #why(): string {
    const e = this.#exited;
    if (e?.error) return `cannot run ${this.binary}: ${e.error.message}`;
    const msg = this.#stderr.trim().split("\n")[0];
    if (msg) return msg;
    return `${this.binary} exited (${e?.signal ?? `code ${e?.code}`}) without answering`;
  }

  /** Sends records and waits until the helper has answered every one (at most `timeoutMs`). */
  async run(records: Buffer[], timeoutMs = this.timeoutMs): Promise<void> {
    if (!records.length) return;
    const child = this.#start();
    const want = this.#acks + records.length;
    if (!this.#exited) child.stdin!.write(records.length === 1 ? records[0]! : Buffer.concat(records));
    const deadline = Date.now() + timeoutMs;
    while (this.#acks < want) {
      if (this.#exited) throw new LayerHelperError(this.#why());
      const left = deadline - Date.now();
      if (left <= 0) {
        this.kill();
        throw new LayerHelperError(`${this.binary} did not answer within ${timeoutMs} ms`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiter = () => { clearTimeout(t); resolve(); };
      });
      this.#waiter = undefined;
    }
  }

  /** Ends the helper (EOF) and waits for it to exit cleanly. */
  async close(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    if (!this.#exited) {
      child.stdin!.end();
      const deadline = Date.now() + this.timeoutMs;
      while (!this.#exited) {
        const left = deadline - Date.now();
        if (left <= 0) { this.kill(); throw new LayerHelperError(`${this.binary} did not exit within ${this.timeoutMs} ms`); }
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, left);
          this.#waiter = () => { clearTimeout(t); resolve(); };
        });
        this.#waiter = undefined;
      }
    }
    if (this.#exited.error || this.#exited.code !== 0) throw new LayerHelperError(this.#why());
  }

  /** Flushes the layer's filesystem (syncfs) and waits for it. */
  async sync(): Promise<void> { await this.run([Buffer.from("S")], SYNC_TIMEOUT_MS); }

  /** Kills the helper (on failure paths). */
  kill() {
    const child = this.#child;
    if (child && !this.#exited) child.kill("SIGKILL");
  }

  /** Kills and waits up to the timeout for the exit (failure paths: nothing may still write). */
  async abort(): Promise<void> {
    const child = this.#child;
    if (!child || this.#exited) return;
    child.kill("SIGKILL");
    const deadline = Date.now() + this.timeoutMs;
    while (!this.#exited && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, deadline - Date.now());
        this.#waiter = () => { clearTimeout(t); resolve(); };
      });
      this.#waiter = undefined;
    }
  }
}

/**
 * syncfs for the layers of the pulls in flight, through one berth-layer started on the snapshot
 * directory (every layer lives on its filesystem) instead of one process per layer: on a busy
 * machine each spawn costs the event loop tens of milliseconds. Requests that arrive while a
 * syncfs runs share the next one, which starts after it (their data was written before they
 * asked). The process ends when the last user releases it (berth-layer exits on EOF, so
 * nothing outlives berthd either).
 */
export class FsSyncer {
  readonly binary: string;
  readonly root: string;
  #helper?: LayerHelper;
  #users = 0;
  #running?: Promise<void>;
  #queued?: Promise<void>;

  constructor(binary: string, root: string) { this.binary = binary; this.root = root; }

  acquire() { this.#users++; }

  /** Drops a user; the last one ends the helper (after any syncfs still running). */
  async release(): Promise<void> {
    if (--this.#users > 0) return;
    this.#users = 0;
    await this.#queued?.catch(() => {});
    await this.#running?.catch(() => {});
    if (this.#users > 0) return;
    const h = this.#helper;
    this.#helper = undefined;
    if (h) await h.close().catch(() => h.abort());
  }

  /** Flushes the filesystem of `root`; resolves once a syncfs that started after this call has finished. */
  sync(): Promise<void> {
    if (!this.#running) return this.#start();
    this.#queued ??= this.#running.catch(() => {}).then(() => {
      this.#queued = undefined;
      return this.#start();
    });
    return this.#queued;
  }

  #start(): Promise<void> {
    const p = (async () => {
      this.#helper ??= new LayerHelper(this.binary, this.root);
      try {
        await this.#helper.sync();
      } catch (err) {
        const h = this.#helper;
        this.#helper = undefined; // a helper that failed is not used again
        await h?.abort();
        throw err;
      }
    })();
    this.#running = p;
    void p.catch(() => {}).finally(() => { if (this.#running === p) this.#running = undefined; });
    return p;
  }
}
