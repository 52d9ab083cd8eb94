// The client of berth-spawn (helper/berth-spawn.c), berthd's process starter: runCommand hands it
// each helper run, and the monitor start and ExecSync's berth-exec use it, so that berthd does not
// fork for them (exec sessions and the layer and stream helpers, which keep pipes to berthd, still
// fork).
// A fork of berthd (70-100 MB) blocks its event loop 1.2-2.5 ms until the child has exec'd; a
// request to berth-spawn is a write to a pipe.
//
// One berth-spawn serves every run; it is started on first use and again after it dies. A run
// waiting when it dies comes back as a spawn error naming that (the command itself may go on, as
// after a berthd that forked it died). Requests and replies are length-prefixed frames, described
// in berth-spawn.c. Limits (timeouts, aborts) stay with the caller, which asks for a kill.
import { spawn, type ChildProcess } from "node:child_process";
import { constants } from "node:os";
import { nodeUtil } from "./builtins.ts";

export interface SpawnRequest {
  file: string;
  args: readonly string[];
  env: NodeJS.ProcessEnv;
  cwd?: string | undefined;
  /** Written to the command's stdin, which is then closed; absent: /dev/null. */
  stdin?: string | undefined;
  /** stdout and stderr go to this file (created 0600, not following a symlink) instead of pipes. */
  outputFile?: string | undefined;
  /** cgroup.procs files the command joins before it execs (a failure: its stderr says which, exit 97). */
  cgroupProcs?: readonly string[] | undefined;
  /**
   * Give the command a pipe as fd 3 and call this with its first line (without the newline; at
   * most 4 KiB; what came before EOF if no newline), before the outcome. A monitor's sync pipe.
   */
  onSyncLine?: ((line: string) => void) | undefined;
  /** Bytes of stdout and of stderr kept (the rest counted as dropped); default 4 MiB, at most MAX_OUTPUT_LIMIT. */
  maxOutputBytes?: number | undefined;
}

export interface SpawnOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: Buffer;
  /** Bytes past the stream's bound (maxOutputBytes), dropped; berth-spawn's count stops at 2^32-1 ("at least"). */
  droppedOut: number;
  droppedErr: number;
  /** Set when the command could not be started (or berth-spawn died while it ran). */
  spawnError?: Error;
}

export interface SpawnedRun {
  /** SIGKILLs the command's process group; the outcome still arrives (killed by SIGKILL). */
  kill(): void;
  /**
   * The outcome comes as soon as the command has exited, with its output up to what the pipes hold
   * then, without waiting for them to close (a background child may hold them); nothing is killed.
   */
  release(): void;
  /** Sends `sig` to the command alone (not its group), while it runs. */
  signal(sig: NodeJS.Signals): void;
}

const OP_RUN = 1;
const OP_KILL = 2;
const F_STDIN = 1;
const F_SYNC3 = 2;
const F_CGROUPS = 4;
const F_MAXOUT = 8;
const OP_RELEASE = 3;
const OP_SIGNAL = 4;
/** berth-spawn's MAX_OUTPUT_LIMIT: the most a run may keep of each of stdout and stderr. */
export const MAX_OUTPUT_LIMIT = 16 << 20;
/** Number to name, the first name winning as in libuv and Node (EAGAIN not EWOULDBLOCK, SIGABRT not SIGIOT, SIGIO not SIGPOLL). */
function byNumber<T extends string>(o: Record<string, number>): Map<number, T> {
  const m = new Map<number, T>();
  for (const [name, n] of Object.entries(o)) if (!m.has(n)) m.set(n, name as T);
  return m;
}
const errnoNames = byNumber<string>(constants.errno);
const signalNumber = (sig: NodeJS.Signals): number => {
  const n = (constants.signals as Record<string, number>)[sig];
  if (n === undefined) throw new TypeError(`unknown signal ${sig}`);
  return n;
};
const signalNames = byNumber<NodeJS.Signals>(constants.signals);
/** berth-spawn's MAX_FRAME: a longer request would end it (and fail every run in flight). */
const MAX_REQUEST = 16 << 20;
/** berth-spawn's MAX_CHILDREN. */
const MAX_RUNNING = 1024;

/** Throws as child_process.spawn does for a string it cannot pass to execve. */
function checkNoNul(what: string, s: string): void {
  if (s.includes("\0")) {
    throw Object.assign(new TypeError(`The argument '${what}' must be a string without null bytes. Received ${JSON.stringify(s)}`), { code: "ERR_INVALID_ARG_VALUE" });
  }
}

/** Encodes one RUN request frame. */
export function encodeRun(id: number, req: SpawnRequest): Buffer {
  checkNoNul("file", req.file);
  const strs: string[] = [req.file, req.cwd ?? "", req.outputFile ?? ""];
  for (const a of req.args) checkNoNul("args", a);
  const env = encodeEnv(req.env);
  if (req.cwd) checkNoNul("options.cwd", req.cwd);
  for (const f of req.cgroupProcs ?? []) checkNoNul("cgroupProcs", f);
  const stdin = req.stdin === undefined ? undefined : Buffer.from(req.stdin, "utf8");
  const argv = [req.file, ...req.args];
  const cgroups = req.cgroupProcs?.length ? req.cgroupProcs : undefined;
  const maxOut = req.maxOutputBytes;
  if (maxOut !== undefined && !(Number.isInteger(maxOut) && maxOut >= 0 && maxOut <= MAX_OUTPUT_LIMIT)) {
    throw new RangeError(`spawn ${req.file}: maxOutputBytes ${maxOut} is not an integer from 0 to ${MAX_OUTPUT_LIMIT}`);
  }
  let size = 4 + 1 + 4 + 4 + 4 + env.length;
  for (const s of strs) size += 4 + Buffer.byteLength(s);
  for (const s of argv) size += 4 + Buffer.byteLength(s);
  if (stdin) size += 4 + stdin.length;
  if (cgroups) { size += 4; for (const s of cgroups) size += 4 + Buffer.byteLength(s); }
  if (maxOut !== undefined) size += 4;
  if (size - 4 > MAX_REQUEST) {
    throw Object.assign(new RangeError(`spawn ${req.file}: its arguments, environment and stdin take ${size - 4} bytes, over berth-spawn's limit of ${MAX_REQUEST}`), { code: "E2BIG" });
  }
  const b = Buffer.allocUnsafe(size);
  let o = 0;
  const u32 = (v: number) => { o = b.writeUInt32LE(v, o); };
  const str = (s: string) => { const n = b.write(s, o + 4, "utf8"); b.writeUInt32LE(n, o); o += 4 + n; };
  u32(size - 4);
  o = b.writeUInt8(OP_RUN, o);
  u32(id);
  u32((stdin ? F_STDIN : 0) | (req.onSyncLine ? F_SYNC3 : 0) | (cgroups ? F_CGROUPS : 0) | (maxOut !== undefined ? F_MAXOUT : 0));
  for (const s of strs) str(s);
  u32(argv.length);
  for (const s of argv) str(s);
  o += env.copy(b, o);
  if (stdin) { u32(stdin.length); stdin.copy(b, o); o += stdin.length; }
  if (cgroups) { u32(cgroups.length); for (const s of cgroups) str(s); }
  if (maxOut !== undefined) u32(maxOut);
  return b;
}

/**
 * The environment as the frame carries it (u32 count, then each "K=V"). The last encoding is
 * kept: almost every run passes process.env, unchanged since start-up. Its entries are read and
 * compared on every call (joined with NUL, which no entry holds once checked), so a changed
 * entry is always seen; only the buffer is reused.
 */
let lastEnv: { src: NodeJS.ProcessEnv; keys: string; buf: Buffer } | undefined;
function encodeEnv(env: NodeJS.ProcessEnv): Buffer {
  const entries: string[] = [];
  for (const [k, v] of Object.entries(env)) if (v !== undefined) entries.push(`${k}=${v}`);
  for (const kv of entries) checkNoNul("options.env", kv);
  const keys = entries.join("\0");
  if (lastEnv && lastEnv.src === env && lastEnv.keys === keys) return lastEnv.buf;
  let size = 4;
  for (const kv of entries) size += 4 + Buffer.byteLength(kv);
  const buf = Buffer.allocUnsafe(size);
  let o = buf.writeUInt32LE(entries.length, 0);
  for (const kv of entries) { const n = buf.write(kv, o + 4, "utf8"); buf.writeUInt32LE(n, o); o += 4 + n; }
  lastEnv = { src: env, keys, buf };
  return buf;
}

/** A KILL, RELEASE or SIGNAL frame (the last with its signal number). */
function encodeOp(op: number, id: number, arg?: number): Buffer {
  const b = Buffer.allocUnsafe(arg === undefined ? 9 : 13);
  b.writeUInt32LE(b.length - 4, 0);
  b.writeUInt8(op, 4);
  b.writeUInt32LE(id, 5);
  if (arg !== undefined) b.writeUInt32LE(arg, 9);
  return b;
}

function spawnErrorFor(file: string, args: readonly string[], errno: number): Error {
  const name = errnoNames.get(errno) ?? `errno ${errno}`;
  return Object.assign(new Error(`spawn ${file} ${name}`), { code: name, errno: -errno, syscall: `spawn ${file}`, path: file, spawnargs: [...args] });
}

/** The output file could not be opened: the error fs.openSync gives (the forked path's), not one naming the binary. */
function openErrorFor(path: string, errno: number): Error {
  const code = nodeUtil().getSystemErrorName(-errno);
  return Object.assign(new Error(`${code}: ${nodeUtil().getSystemErrorMessage(-errno).toLowerCase()}, open '${path}'`), { code, errno: -errno, syscall: "open", path });
}

interface Pending { file: string; args: readonly string[]; outputFile?: string | undefined; done: (o: SpawnOutcome) => void; onSyncLine?: ((line: string) => void) | undefined }

export class Spawner {
  readonly binary: string;
  #child: ChildProcess | undefined;
  #pending = new Map<number, Pending>();
  #nextId = 1;
  #queue: { id: number; frame: Buffer; pending: Pending }[] = [];
  #startFailures = 0;
  #chunks: Buffer[] = [];
  #have = 0;
  /** berth-spawn processes started so far (tests and the log read it). */
  started = 0;

  constructor(binary: string) {
    this.binary = binary;
  }

  /** The running berth-spawn's pid, if one runs. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /**
   * Starts one command; `done` is called once with its outcome. Throws (synchronously) for a file,
   * argument or environment entry holding a NUL byte, as child_process.spawn does.
   */
  run(req: SpawnRequest, done: (o: SpawnOutcome) => void): SpawnedRun {
    const id = this.#nextId;
    this.#nextId = this.#nextId >= 0x7fffffff ? 1 : this.#nextId + 1;
    const frame = encodeRun(id, req);
    const pending: Pending = { file: req.file, args: req.args, outputFile: req.outputFile, done, onSyncLine: req.onSyncLine };
    if (this.#pending.size >= MAX_RUNNING) {
      // berth-spawn runs at most 1024 commands at once (more: EAGAIN): the rest wait here, in
      // order, bounded by their callers' limits (a kill takes a waiting run out of the queue).
      this.#queue.push({ id, frame, pending });
      return {
        kill: () => {
          const i = this.#queue.findIndex((q) => q.id === id);
          if (i < 0) { this.#killSent(id); return; }
          this.#queue.splice(i, 1);
          done({ code: null, signal: "SIGKILL", stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), droppedOut: 0, droppedErr: 0 });
        },
        // not started yet: nothing to release or signal; once sent, the frames go as below
        release: () => this.#opSent(OP_RELEASE, id),
        signal: (sig) => this.#opSent(OP_SIGNAL, id, signalNumber(sig)),
      };
    }
    this.#send(id, frame, pending);
    return { kill: () => this.#killSent(id), release: () => this.#opSent(OP_RELEASE, id), signal: (sig) => this.#opSent(OP_SIGNAL, id, signalNumber(sig)) };
  }

  #send(id: number, frame: Buffer, pending: Pending): void {
    const child = this.#ensure();
    this.#pending.set(id, pending);
    if (this.#pending.size === 1) (child.stdout as unknown as { ref?: () => void }).ref?.(); // a waiting run keeps the process alive
    child.stdin!.write(frame);
  }

  #killSent(id: number): void {
    this.#opSent(OP_KILL, id);
  }

  /** An op for a run berth-spawn has and has not reported yet. */
  #opSent(op: number, id: number, arg?: number): void {
    const child = this.#child;
    if (child && this.#pending.has(id)) child.stdin!.write(encodeOp(op, id, arg));
  }

  /** True after berth-spawn could not be started 3 times in a row (its binary gone): callers fork instead. */
  get broken(): boolean {
    return this.#startFailures >= 3;
  }

  /** Stops berth-spawn (what it started goes on); waiting runs fail. */
  close(): void {
    const c = this.#child;
    if (!c) return;
    this.#fail(c, "berth-spawn was closed");
    c.stdin?.end();
  }

  #ensure(): ChildProcess {
    if (this.#child) return this.#child;
    const child = spawn(this.binary, [], { stdio: ["pipe", "pipe", "inherit"] });
    this.started++;
    this.#child = child;
    this.#chunks = [];
    this.#have = 0;
    child.unref();
    (child.stdout as unknown as { unref?: () => void }).unref?.();
    (child.stdin as unknown as { unref?: () => void }).unref?.();
    child.stdin!.on("error", () => { /* it died: "exit" fails the waiting runs */ });
    child.stdout!.on("data", (d: Buffer) => this.#onData(child, d));
    child.on("error", (e) => {
      if (child.pid === undefined) this.#startFailures++;
      this.#fail(child, `cannot run berth-spawn ${this.binary}: ${e.message}`);
    });
    // "close", not "exit": replies it wrote before it died are still read (and reported) first.
    child.on("close", (code, signal) => this.#fail(child, `berth-spawn exited (${signal ?? `status ${code}`})`));
    return child;
  }

  #fail(child: ChildProcess, why: string): void {
    if (this.#child !== child) return;
    this.#child = undefined;
    const waiting = [...this.#pending.values()];
    this.#pending.clear();
    const queued = this.#queue.splice(0).map((q) => q.pending);
    for (const p of [...waiting, ...queued]) {
      p.done({
        code: null, signal: null, stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), droppedOut: 0, droppedErr: 0,
        spawnError: new Error(`${why} before ${p.file} was reported: it may still run`),
      });
    }
  }

  #onData(child: ChildProcess, d: Buffer): void {
    if (this.#child !== child) return;
    // Chunks are kept as they come and joined once per complete frame: joining on every chunk
    // copied a 8 MiB reply ~128 times (0.3-0.5 s of berthd's CPU for one run).
    this.#chunks.push(d);
    this.#have += d.length;
    while (this.#have >= 4) {
      if (this.#chunks[0]!.length < 4) this.#chunks = [Buffer.concat(this.#chunks, this.#have)];
      const need = 4 + this.#chunks[0]!.readUInt32LE(0);
      if (this.#have < need) return;
      const all = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.#have);
      this.#reply(all.subarray(4, need));
      const rest = all.subarray(need);
      this.#chunks = rest.length ? [rest] : [];
      this.#have = rest.length;
    }
  }

  #reply(p: Buffer): void {
    const id = p.readUInt32LE(1);
    if (p[0] === 2) {
      const line = p.toString("utf8", 9, 9 + p.readUInt32LE(5));
      const pending = this.#pending.get(id);
      const cb = pending?.onSyncLine;
      if (pending) pending.onSyncLine = undefined;
      cb?.(line);
      return;
    }
    const code = p.readInt32LE(5);
    const sig = p.readInt32LE(9);
    const err = p.readInt32LE(13);
    const droppedOut = p.readUInt32LE(17);
    const droppedErr = p.readUInt32LE(21);
    const l0 = p.readUInt32LE(25);
    const stdout = Buffer.from(p.subarray(29, 29 + l0));
    const l1 = p.readUInt32LE(29 + l0);
    const stderr = Buffer.from(p.subarray(33 + l0, 33 + l0 + l1));
    const pending = this.#pending.get(id);
    if (!pending) return;
    this.#pending.delete(id);
    this.#startFailures = 0;
    const next = this.#queue.shift();
    if (next) this.#send(next.id, next.frame, next.pending);
    if (!this.#pending.size) (this.#child?.stdout as unknown as { unref?: () => void } | undefined)?.unref?.();
    pending.done({
      code: err || sig ? null : code,
      signal: sig ? signalNames.get(sig) ?? null : null,
      stdout, stderr, droppedOut, droppedErr,
      ...(err ? { spawnError: code === -2 && pending.outputFile !== undefined ? openErrorFor(pending.outputFile, err) : spawnErrorFor(pending.file, pending.args, err) } : {}),
    });
  }
}
