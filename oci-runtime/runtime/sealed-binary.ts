// The runtime binary run from a sealed in-memory copy that berthd holds open.
//
// runc protects the host's runc binary from a container (CVE-2019-5736) by copying itself into a
// sealed memfd at every `runc init`, that is on every create and exec: 8.7 MB copied and a second
// execve of a Go binary. Measured here, `runc exec` p50 22.6-23.5 ms from /usr/sbin/runc and
// 16.7-18.5 ms from a sealed copy (60 calls each, alternating). runc skips its copy when it
// already runs from a memfd carrying exactly its seals (F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_GROW,
// F_SEAL_WRITE), which no one can change, so the protection is the same.
//
// berth-mount seal makes that copy; berthd opens it through /proc/<helper>/fd/N (the helper waits
// for that) and keeps the file open; monitors and exec helpers run
// /proc/<berthd>/fd/<fd> while berthd lives. A memfd cannot be bind-mounted (the kernel refuses
// a bind of a file outside the caller's mount namespace: EINVAL), hence the open file.
// The binary on disk is checked every CHECK_MS; when it changed (a package upgrade), a new copy
// is made. The old one stays open until berthd stops (8.7 MB each for runc): closing it would let
// its fd number, in a path some monitor or exec helper may still be about to run, name another
// file. While there is no copy (sealing failed, the binary changed or is gone) berthd runs the
// binary itself, and says why once; a binary that could not be copied is tried again only once
// it changes.
import { spawn } from "node:child_process";
import { open, readlink, stat, type FileHandle } from "node:fs/promises";

export const SEAL_TIMEOUT_MS = 10_000;
export const CHECK_MS = 10_000;
/** What /proc/PID/fd/N of the copy links to (berth-mount's memfd name). */
export const MEMFD_LINK = "/memfd:berth-sealed-runtime (deleted)";
/** The helper's one line: "/proc/PID/fd/N SIZE". */
const LINE_MAX = 256;

export interface Sealed { path: string; handle: FileHandle; size: number }

/** Makes a sealed copy of `binary` with `helper` (berth-mount) and opens it; answers the path this process's children can run. */
export async function sealBinary(helper: string, binary: string): Promise<Sealed> {
  const child = spawn(helper, ["seal", binary], { stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stderr!.on("data", (d: Buffer) => { if (err.length < 4096) err += d.toString(); });
  const exited = new Promise<number | null>((resolve) => { child.once("close", (code) => resolve(code)); child.once("error", () => resolve(null)); });
  let timer: NodeJS.Timeout | undefined;
  try {
    const line = await new Promise<string>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${SEAL_TIMEOUT_MS} ms`)), SEAL_TIMEOUT_MS);
      child.once("error", reject);
      child.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        const nl = out.indexOf("\n");
        if (nl >= 0) resolve(out.slice(0, nl));
        else if (out.length > LINE_MAX) reject(new Error("an answer longer than a line"));
      });
      void exited.then((code) => reject(new Error(`${helper} seal exited (${code ?? "not started"}) without an answer: ${err.trim()}`)));
    });
    const m = /^\/proc\/(\d+)\/fd\/(\d+) (\d+)$/.exec(line);
    if (!m || Number(m[1]) !== child.pid) throw new Error(`unexpected answer ${JSON.stringify(line)}`);
    // The helper waits for stdin's EOF, so its pid and fd still name its memfd here; checked anyway.
    if (child.exitCode !== null || child.signalCode !== null) throw new Error("the helper exited before its copy was opened");
    const handle = await open(`/proc/${m[1]}/fd/${m[2]}`, "r");
    try {
      const size = Number(m[3]);
      const mine = `/proc/${process.pid}/fd/${handle.fd}`;
      const link = await readlink(mine);
      if (link !== MEMFD_LINK) throw new Error(`what was opened is ${JSON.stringify(link)}, not the helper's memfd`);
      const st = await handle.stat();
      if (st.size !== size) throw new Error(`the copy has ${st.size} bytes, the helper said ${size}`);
      return { path: mine, handle, size };
    } catch (e) {
      await handle.close();
      throw e;
    }
  } finally {
    clearTimeout(timer);
    child.stdin!.end();
    if (child.exitCode === null && child.signalCode === null) {
      const t = setTimeout(() => child.kill("SIGKILL"), 1000);
      await exited;
      clearTimeout(t);
    }
  }
}

/** What tells a changed binary: ctime too, which user space cannot set (an in-place rewrite may keep size and mtime). */
interface Identity { dev: number; ino: number; size: number; mtimeMs: number; ctimeMs: number }
const identity = async (file: string): Promise<Identity> => {
  const s = await stat(file);
  return { dev: s.dev, ino: s.ino, size: s.size, mtimeMs: s.mtimeMs, ctimeMs: s.ctimeMs };
};
const same = (a: Identity, b: Identity) => a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;

/** A runtime binary's sealed copy, renewed when the binary on disk changes. */
export class SealedRuntimeBinary {
  #current: (Sealed & { of: Identity }) | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** Copies no longer handed out, kept open until close(): a path once handed out never names another file. */
  #old: FileHandle[] = [];
  #checking: Promise<void> | undefined;
  /** The binary as it was when a copy of it last failed: not tried again until it changes. */
  #failedOn: Identity | undefined;
  #closed = false;
  readonly #helper: string;
  readonly binary: string;
  readonly #onProblem: (message: string) => void;
  #told = false;

  constructor(helper: string, binary: string, onProblem: (message: string) => void) {
    this.#helper = helper;
    this.binary = binary;
    this.#onProblem = onProblem;
  }

  /** The path to run: the sealed copy, or undefined (run `binary`) when there is none. */
  get path(): string | undefined { return this.#current?.path; }

  /** Copies no longer handed out and still open (one per upgrade of the binary since start). */
  get retired(): number { return this.#old.length; }

  /** Makes the first copy and starts the checks; answers whether there is a copy. */
  async start(checkMs = CHECK_MS): Promise<boolean> {
    await this.check();
    if (this.#closed) return false;
    this.#timer = setInterval(() => { void this.check(); }, checkMs);
    this.#timer.unref();
    return !!this.#current;
  }

  /** Renews the copy when the binary changed (or there is none yet); never rejects. */
  check(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#checking ??= this.#check().finally(() => { this.#checking = undefined; });
    return this.#checking;
  }

  async #check(): Promise<void> {
    let before: Identity | undefined;
    try {
      before = await identity(this.binary).catch((err: Error) => { throw new Error(`cannot stat it: ${err.message}`); });
      if (this.#current && same(this.#current.of, before)) return;
      // Changed (an upgrade may be a fix) or none yet: the old copy is not handed out again.
      this.#drop();
      if (this.#failedOn && same(this.#failedOn, before)) return; // refused as it is: said once already
      const sealed = await sealBinary(this.#helper, this.binary);
      let after: Identity | undefined;
      try {
        after = await identity(this.binary);
      } finally {
        if (!after || !same(before, after) || sealed.size !== after.size || this.#closed) await sealed.handle.close();
      }
      // Changed while it was copied: the next check copies again.
      if (!same(before, after) || sealed.size !== after.size || this.#closed) return;
      this.#current = { ...sealed, of: after };
      this.#failedOn = undefined;
      this.#told = false;
    } catch (err) {
      this.#drop(); // berthd runs the binary itself until a copy can be made again
      this.#failedOn = before;
      if (!this.#told) {
        this.#told = true;
        this.#onProblem(`cannot make a sealed copy of ${this.binary}: ${(err as Error).message}`);
      }
    }
  }

  #drop(): void {
    if (!this.#current) return;
    this.#old.push(this.#current.handle);
    this.#current = undefined;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#checking;
    const handles = [...this.#old, ...(this.#current ? [this.#current.handle] : [])];
    this.#old = [];
    this.#current = undefined;
    await Promise.all(handles.map((h) => h.close().catch(() => {})));
  }
}
