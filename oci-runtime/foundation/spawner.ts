// The client of berth-spawn (helper/berth-spawn.c), berthd's process starter: runCommand hands it
// each helper run so that berthd never forks itself. A fork of berthd (70-100 MB) blocks its event
// loop 1.2-2.5 ms until the child has exec'd; a request to berth-spawn is a write to a pipe.
//
// One berth-spawn serves every run; it is started on first use and again after it dies. A run
// waiting when it dies comes back as a spawn error naming that (the command itself may go on, as
// after a berthd that forked it died). Requests and replies are length-prefixed frames, described
// in berth-spawn.c. Limits (timeouts, aborts) stay with the caller, which asks for a kill.
import { spawn, type ChildProcess } from "node:child_process";
import { constants } from "node:os";

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
}

export interface SpawnOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: Buffer;
  /** Bytes past berth-spawn's 4 MiB per stream, dropped. */
  droppedOut: number;
  droppedErr: number;
  /** Set when the command could not be started (or berth-spawn died while it ran). */
  spawnError?: Error;
}

export interface SpawnedRun {
  /** SIGKILLs the command's process group; the outcome still arrives (killed by SIGKILL). */
  kill(): void;
}

const OP_RUN = 1;
const OP_KILL = 2;
const F_STDIN = 1;
const F_SYNC3 = 2;
const F_CGROUPS = 4;
const errnoNames = new Map(Object.entries(constants.errno).map(([name, n]) => [n, name]));
const signalNames = new Map(Object.entries(constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]));

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
  let size = 4 + 1 + 4 + 4 + 4 + env.length;
  for (const s of strs) size += 4 + Buffer.byteLength(s);
  for (const s of argv) size += 4 + Buffer.byteLength(s);
  if (stdin) size += 4 + stdin.length;
  if (cgroups) { size += 4; for (const s of cgroups) size += 4 + Buffer.byteLength(s); }
  const b = Buffer.allocUnsafe(size);
  let o = 0;
  const u32 = (v: number) => { o = b.writeUInt32LE(v, o); };
  const str = (s: string) => { const n = b.write(s, o + 4, "utf8"); b.writeUInt32LE(n, o); o += 4 + n; };
  u32(size - 4);
  o = b.writeUInt8(OP_RUN, o);
  u32(id);
  u32((stdin ? F_STDIN : 0) | (req.onSyncLine ? F_SYNC3 : 0) | (cgroups ? F_CGROUPS : 0));
  for (const s of strs) str(s);
  u32(argv.length);
  for (const s of argv) str(s);
  o += env.copy(b, o);
  if (stdin) { u32(stdin.length); stdin.copy(b, o); o += stdin.length; }
  if (cgroups) { u32(cgroups.length); for (const s of cgroups) str(s); }
  return b;
}

/**
 * The environment as the frame carries it (u32 count, then each "K=V"). The last one is kept:
 * almost every run passes process.env, whose entries berthd never changes after start-up, and
 * encoding its ~70 entries was a third of a request's cost. A changed entry is still seen: the
 * kept copy is compared entry by entry only when a new object comes, and process.env is re-read.
 */
let lastEnv: { src: NodeJS.ProcessEnv; keys: string; buf: Buffer } | undefined;
function encodeEnv(env: NodeJS.ProcessEnv): Buffer {
  const entries: string[] = [];
  for (const [k, v] of Object.entries(env)) if (v !== undefined) entries.push(`${k}=${v}`);
  const keys = entries.join("\0");
  if (lastEnv && lastEnv.src === env && lastEnv.keys === keys) return lastEnv.buf;
  for (const kv of entries) checkNoNul("options.env", kv);
  let size = 4;
  for (const kv of entries) size += 4 + Buffer.byteLength(kv);
  const buf = Buffer.allocUnsafe(size);
  let o = buf.writeUInt32LE(entries.length, 0);
  for (const kv of entries) { const n = buf.write(kv, o + 4, "utf8"); buf.writeUInt32LE(n, o); o += 4 + n; }
  lastEnv = { src: env, keys, buf };
  return buf;
}

function encodeKill(id: number): Buffer {
  const b = Buffer.allocUnsafe(9);
  b.writeUInt32LE(5, 0);
  b.writeUInt8(OP_KILL, 4);
  b.writeUInt32LE(id, 5);
  return b;
}

function spawnErrorFor(file: string, args: readonly string[], errno: number): Error {
  const name = errnoNames.get(errno) ?? `errno ${errno}`;
  return Object.assign(new Error(`spawn ${file} ${name}`), { code: name, errno: -errno, syscall: `spawn ${file}`, path: file, spawnargs: [...args] });
}

interface Pending { file: string; args: readonly string[]; done: (o: SpawnOutcome) => void; onSyncLine?: ((line: string) => void) | undefined }

export class Spawner {
  readonly binary: string;
  #child: ChildProcess | undefined;
  #pending = new Map<number, Pending>();
  #nextId = 1;
  #in: Buffer = Buffer.alloc(0);
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
    const child = this.#ensure();
    this.#pending.set(id, { file: req.file, args: req.args, done, onSyncLine: req.onSyncLine });
    child.stdin!.write(frame);
    return {
      kill: () => {
        if (this.#pending.has(id) && this.#child === child) child.stdin!.write(encodeKill(id));
      },
    };
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
    this.#in = Buffer.alloc(0);
    child.unref();
    (child.stdout as unknown as { unref?: () => void }).unref?.();
    (child.stdin as unknown as { unref?: () => void }).unref?.();
    child.stdin!.on("error", () => { /* it died: "exit" fails the waiting runs */ });
    child.stdout!.on("data", (d: Buffer) => this.#onData(child, d));
    child.on("error", (e) => this.#fail(child, `cannot run berth-spawn ${this.binary}: ${e.message}`));
    child.on("exit", (code, signal) => this.#fail(child, `berth-spawn exited (${signal ?? `status ${code}`})`));
    return child;
  }

  #fail(child: ChildProcess, why: string): void {
    if (this.#child !== child) return;
    this.#child = undefined;
    const waiting = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of waiting) {
      p.done({
        code: null, signal: null, stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), droppedOut: 0, droppedErr: 0,
        spawnError: new Error(`${why} before ${p.file} was reported: it may still run`),
      });
    }
  }

  #onData(child: ChildProcess, d: Buffer): void {
    if (this.#child !== child) return;
    this.#in = this.#in.length ? Buffer.concat([this.#in, d]) : d;
    let off = 0;
    while (this.#in.length - off >= 4) {
      const len = this.#in.readUInt32LE(off);
      if (this.#in.length - off - 4 < len) break;
      this.#reply(this.#in.subarray(off + 4, off + 4 + len));
      off += 4 + len;
    }
    this.#in = off === this.#in.length ? Buffer.alloc(0) : Buffer.from(this.#in.subarray(off));
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
    pending.done({
      code: err || sig ? null : code,
      signal: sig ? signalNames.get(sig) ?? null : null,
      stdout, stderr, droppedOut, droppedErr,
      ...(err ? { spawnError: spawnErrorFor(pending.file, pending.args, err) } : {}),
    });
  }
}
