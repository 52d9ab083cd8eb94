// ExecSync: run a command in a running container, collect its output, enforce a deadline.
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { constants as osConstants } from "node:os";
import { uniqueSuffix } from "../foundation/unique.ts";
import { BerthError, Code, deadlineExceeded, internal } from "../foundation/errdefs.ts";
import type { ChildProcess } from "node:child_process";
import type { Readable } from "node:stream";
import type { Process } from "../bundle-spec/types.ts";
import { isAlive, readPidFile } from "../monitor/pids.ts";
import type { OciRuntime } from "./oci-runtime.ts";
import { runtimeError, runtimeMessage } from "./runtime-error.ts";
import { removeFile } from "./runc-cli.ts";
import { warmCgroupAttach } from "../cgroups/attach-warm.ts";
import { currentSpawner } from "../foundation/run-command.ts";
import { MAX_OUTPUT_LIMIT, type SpawnOutcome, type Spawner } from "../foundation/spawner.ts";

export interface ExecSyncOptions {
  /** Kill the exec'd process and throw DEADLINE_EXCEEDED after this long; 0 or unset = no limit. */
  timeoutMs?: number;
  /** Aborting it (the RPC was cancelled) kills the exec'd process and answers CANCELLED. */
  signal?: AbortSignal;
  /** Extra "KEY=value" entries; they replace the base process's entries with the same key. */
  env?: string[];
  user?: { uid: number; gid: number; additionalGids?: number[] };
  cwd?: string;
  /** Base process (usually the container spec's); default: read from the bundle's config.json. */
  process?: Process;
  /** Bundle dir; default: asked from the runtime's state. */
  bundle?: string;
  /** Dir for the pid and process files; default `<bundle>/exec`. */
  workDir?: string;
  /** Output beyond this many bytes per stream is dropped; default 16 MiB. */
  maxOutputBytes?: number;
  /**
   * After the exec'd process exits, keep reading output for at most this long, then close
   * berth's ends of the pipes (a background child that inherited them keeps running but no
   * longer holds the call). Default 1000 ms.
   */
  drainTimeoutMs?: number;
  /**
   * berth-exec (a child subreaper): the runtime is run detached under it and it reports the
   * exec'd process's exit status, so the call ends when that process exits. Without it the
   * call ends when the runtime exits, which waits for every holder of the output pipes.
   * Used as given: the caller passes it only when it is installed.
   */
  reaper?: string;
}

/** Upper bound for drainTimeoutMs (the config check refuses more). */
export const MAX_EXEC_DRAIN_MS = 60_000;

export interface ExecSyncResult {
  stdout: Buffer;
  stderr: Buffer;
  exitCode: number;
}

/** Merges env lists by key, later entries winning (pure). */
export function mergeEnv(base: string[], extra: string[]): string[] {
  const out = new Map<string, string>();
  for (const e of [...base, ...extra]) {
    const eq = e.indexOf("=");
    out.set(eq < 0 ? e : e.slice(0, eq), e);
  }
  return [...out.values()];
}

/** The exec'd process spec: the base with args, env, cwd and user overridden (pure). */
export function execProcess(base: Process, args: string[], o: Pick<ExecSyncOptions, "env" | "user" | "cwd">): Process {
  const p: Process = structuredClone(base);
  p.args = args;
  p.terminal = false;
  delete p.consoleSize;
  p.env = mergeEnv(base.env ?? [], o.env ?? []);
  if (o.cwd) p.cwd = o.cwd;
  if (o.user) p.user = { ...p.user, ...o.user };
  return p;
}

class Collector {
  readonly chunks: Buffer[] = [];
  size = 0;
  readonly max: number;
  constructor(max: number) { this.max = max; }
  push(d: Buffer) {
    if (this.size >= this.max) return;
    const take = d.subarray(0, this.max - this.size);
    this.chunks.push(take);
    this.size += take.length;
  }
  get buf() { return Buffer.concat(this.chunks); }
}

export async function execSync(rt: OciRuntime, id: string, args: string[], o: ExecSyncOptions = {}): Promise<ExecSyncResult> {
  warmCgroupAttach(); // runc exec moves the process into the container's cgroups
  const bundle = o.bundle ?? (o.process ? undefined : (await rt.state(id)).bundle);
  const base = o.process ?? await readBundleProcess(bundle!, id);
  const workDir = o.workDir ?? join(bundle ?? "/tmp", "exec"); // rt.exec makes it (0700)
  const pidFile = join(workDir, `exec-${uniqueSuffix()}.pid`);
  const max = o.maxOutputBytes ?? 16 << 20;
  const spawner = o.reaper && max <= MAX_OUTPUT_LIMIT ? currentSpawner() : undefined;
  if (spawner) {
    try {
      return await execSpawned(spawner, rt, id, args, o, { process: execProcess(base, args, o), pidFile, workDir, reaper: o.reaper!, max });
    } finally {
      void removeFile(pidFile);
    }
  }
  try {
    const reaper = o.reaper;
    const child = await rt.exec(id, {
      process: execProcess(base, args, o), pidFile, workDir,
      ...(reaper ? { detach: true, wrapper: [reaper, pidFile] } : {}),
    });
    child.stdin?.end();
    const out = new Collector(max);
    const err = new Collector(max);
    child.stdout?.on("data", (d: Buffer) => out.push(d));
    child.stderr?.on("data", (d: Buffer) => err.push(d));
    const statusPipe = reaper ? child.stdio[3] as Readable | null : null;
    const statusText = statusPipe ? readBounded(statusPipe, 1024) : Promise.resolve("");
    // "close" waits for every holder of the output pipes, which a background child may be;
    // "exit" is the child's own exit: with the reaper, right after the exec'd process's exit.
    const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      child.once("error", reject);
      child.once("close", (code, signal) => resolve({ code, signal }));
    });
    const exited = reaper
      ? new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
        child.once("error", reject);
        child.once("exit", (code, signal) => resolve({ code, signal }));
      })
      : closed;
    closed.catch(() => {});
    const limits = new ExecLimits(o, () => void killExec(pidFile, child, exited, !!reaper));
    let res;
    let status = "";
    try {
      res = await exited;
      status = await statusText;
      if (!limits.fired) await drain(closed, Math.min(o.drainTimeoutMs ?? 1000, MAX_EXEC_DRAIN_MS));
    } catch (e) {
      throw internal(`exec in container ${id}: cannot run ${rt.binary}: ${(e as Error).message}`, e);
    } finally {
      limits.disarm();
      detach(child);
    }
    await limits.throwIfFired(id, args, pidFile);
    if (reaper) return reaperResult(rt, id, reaper, status, res, out.buf, err.buf);
    const started = (await readPidFile(pidFile)) !== undefined;
    if (!started) {
      // the runtime failed before the process ran: its stderr is the runtime's own message
      const status = res.signal ? `killed by ${res.signal}` : `exit status ${res.code}`;
      throw runtimeError(`${rt.name} exec in container ${id}`, runtimeMessage("", stripLogrus(err.buf.toString()), status));
    }
    return { stdout: out.buf, stderr: err.buf, exitCode: res.code ?? 128 + signalNumber(res.signal) };
  } finally {
    // After the answer: a plain unlink, not awaited (fs.rm's lstat and validation cost a round trip per call).
    void removeFile(pidFile);
  }
}

/**
 * ExecSync's deadline (timeoutMs) and cancel (signal), for both ways of starting berth-exec or the
 * runtime: the first to fire runs `kill` once; disarm() once the call has its answer.
 */
class ExecLimits {
  #timedOut = false;
  #cancelled = false;
  readonly #timer: NodeJS.Timeout | undefined;
  readonly #o: ExecSyncOptions;
  readonly #onAbort: () => void;

  constructor(o: ExecSyncOptions, kill: () => void) {
    this.#o = o;
    this.#onAbort = () => {
      if (this.fired) return;
      this.#cancelled = true;
      kill();
    };
    if (o.timeoutMs && o.timeoutMs > 0) {
      this.#timer = setTimeout(() => {
        if (this.#cancelled) return;
        this.#timedOut = true;
        kill();
      }, o.timeoutMs);
    }
    if (o.signal?.aborted) this.#onAbort();
    else o.signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  get fired(): boolean { return this.#timedOut || this.#cancelled; }

  disarm(): void {
    clearTimeout(this.#timer);
    this.#o.signal?.removeEventListener("abort", this.#onAbort);
  }

  /** When one fired: waits for the exec'd process to be gone, then throws CANCELLED or DEADLINE_EXCEEDED. */
  async throwIfFired(id: string, args: string[], pidFile: string): Promise<void> {
    if (!this.fired) return;
    await ensureGone(pidFile);
    if (this.#cancelled) throw new BerthError(Code.CANCELLED, `exec in container ${id} cancelled: command ${JSON.stringify(args)}`);
    throw deadlineExceeded(`exec in container ${id} timed out after ${this.#o.timeoutMs} ms: command ${JSON.stringify(args)}`);
  }
}

/** ExecSync's answer from berth-exec's status line (and its own end when it wrote none). */
function reaperResult(rt: OciRuntime, id: string, reaper: string, status: string, res: { code: number | null; signal: NodeJS.Signals | null }, stdout: Buffer, stderr: Buffer): ExecSyncResult {
  const m = /^(exit|signal|runtime|error) (.*)\n?$/.exec(status);
  if (!m) {
    const how = res.signal ? `killed by ${res.signal}` : `exit status ${res.code}`;
    throw internal(`exec in container ${id}: ${reaper} ${how} without reporting the exit status: ${stripLogrus(stderr.toString()).trim()}`);
  }
  const [, kind, value] = m as unknown as [string, string, string];
  if (kind === "exit") return { stdout, stderr, exitCode: Number(value) };
  if (kind === "signal") return { stdout, stderr, exitCode: 128 + Number(value) };
  if (kind === "error") throw internal(`exec in container ${id}: ${value}`);
  throw runtimeError(`${rt.name} exec in container ${id}`, runtimeMessage("", stripLogrus(stderr.toString()), `exit status ${value}`));
}

/**
 * ExecSync through berth-spawn (berthd's process starter) rather than a fork of berthd: on the
 * machine of 2 Dec 2026 a fork and exec of berth-exec from berthd took 8.6-9.7 ms and 6.0-8.6 ms
 * of berthd's CPU, through berth-spawn 2.4-2.7 ms and 0.3-0.5 ms (100 runs, three alternating
 * rounds). The same berth-exec runs the runtime detached; berth-spawn keeps its output (up to
 * `max` a stream) and hands over its status line when the exec'd process has exited. The call
 * then waits for the output pipes to close for at most the drain time, after which berth-spawn
 * reports what it read (RELEASE) and a background child that holds them goes on running. A
 * timeout or cancel signals berth-exec (SIGTERM: it kills the process once the runtime has
 * started it) and, if it lingers, its process group (SIGKILL), as killExec does for a fork.
 */
async function execSpawned(sp: Spawner, rt: OciRuntime, id: string, args: string[], o: ExecSyncOptions,
  x: { process: Process; pidFile: string; workDir: string; reaper: string; max: number }): Promise<ExecSyncResult> {
  const cmd = await rt.execCommand(id, { process: x.process, pidFile: x.pidFile, workDir: x.workDir, detach: true, wrapper: [x.reaper, x.pidFile] });
  let status: string | undefined;
  let outcome: SpawnOutcome | undefined;
  let wake!: () => void;
  const statusOrEnd = new Promise<void>((r) => { wake = r; });
  let ended!: (o: SpawnOutcome) => void;
  const finished = new Promise<SpawnOutcome>((r) => { ended = r; });
  void finished.finally(() => removeFile(cmd.processFile));
  let run;
  try {
    run = sp.run({
      file: cmd.file, args: cmd.args, env: process.env, maxOutputBytes: x.max,
      onSyncLine: (line) => { status = line; wake(); },
    }, (out) => { outcome = out; wake(); ended(out); });
  } catch (e) {
    void removeFile(cmd.processFile);
    throw internal(`exec in container ${id}: cannot run ${rt.binary}: ${(e as Error).message}`, e);
  }
  const handle = { kill: (sig: NodeJS.Signals) => { if (sig === "SIGKILL") run.kill(); else run.signal(sig); return true; } };
  const limits = new ExecLimits(o, () => void killExec(x.pidFile, handle, finished, true));
  let res: SpawnOutcome;
  try {
    await statusOrEnd;
    if (!outcome && !limits.fired) {
      // The exec'd process has exited: its output, once the pipes close or the drain time is up.
      const drainTimer = setTimeout(() => run.release(), Math.min(o.drainTimeoutMs ?? 1000, MAX_EXEC_DRAIN_MS));
      res = await finished;
      clearTimeout(drainTimer);
    } else res = await finished;
  } finally {
    limits.disarm();
  }
  if (res.spawnError) throw internal(`exec in container ${id}: cannot run ${rt.binary}: ${res.spawnError.message}`, res.spawnError);
  await limits.throwIfFired(id, args, x.pidFile);
  return reaperResult(rt, id, x.reaper, status ?? "", res, res.stdout, res.stderr);
}

/** Reads a stream to its end, keeping at most `max` bytes. */
function readBounded(s: Readable, max: number): Promise<string> {
  return new Promise((resolve) => {
    const c = new Collector(max);
    s.on("data", (d: Buffer) => c.push(d));
    s.once("close", () => resolve(c.buf.toString()));
    s.once("error", () => resolve(c.buf.toString()));
  });
}

/** Waits for the output pipes to reach EOF, for at most `ms`. */
async function drain(closed: Promise<unknown>, ms: number): Promise<void> {
  let t: NodeJS.Timeout | undefined;
  await Promise.race([closed, new Promise((r) => { t = setTimeout(r, ms); })]);
  clearTimeout(t);
}

/** Closes berth's ends of the child's pipes; whatever still holds the other ends gets EPIPE. */
function detach(child: ChildProcess): void {
  for (const s of child.stdio) if (s && !s.destroyed) s.destroy();
}

/** Forgets a bundle's kept process spec (its container is removed). */
export function forgetBundleProcess(bundle: string): void {
  bundleProcesses.delete(bundle);
}

/** Bundles whose process spec execSync keeps (the oldest goes first). */
export const BUNDLE_PROCESS_CACHE = 64;
const bundleProcesses = new Map<string, Process>();

/**
 * The process spec of a bundle's config.json. It never changes after the container was created
 * (an update rewrites only the resources) and every container has a bundle of its own, so the
 * parsed spec is kept for the next exec in the same container (bounded; execProcess copies it).
 */
async function readBundleProcess(bundle: string, id: string): Promise<Process> {
  const kept = bundleProcesses.get(bundle);
  if (kept) return kept;
  let p: Process;
  try {
    const spec = JSON.parse(await readFile(join(bundle, "config.json"), "utf8")) as { process?: Process };
    if (!spec.process) throw new Error("no process in config.json");
    p = spec.process;
  } catch (err) {
    throw internal(`exec in container ${id}: cannot read process spec from bundle ${bundle}: ${(err as Error).message}`, err);
  }
  bundleProcesses.set(bundle, p);
  while (bundleProcesses.size > BUNDLE_PROCESS_CACHE) bundleProcesses.delete(bundleProcesses.keys().next().value!);
  return p;
}

/** How long berth-exec, told to stop before the runtime reported the pid, gets to see it through. */
export const EXEC_TERM_WAIT_MS = 10_000;

/**
 * Kills the exec'd process itself (the runtime alone would leave it running), then the runtime if
 * it lingers. With berth-exec and no pid yet, berth-exec gets SIGTERM: it kills the process once
 * the runtime reports it (killing berth-exec then would leave a process the runtime starts later).
 */
async function killExec(pidFile: string, child: { kill(s: NodeJS.Signals): boolean }, closed: Promise<unknown>, reaper: boolean): Promise<void> {
  let isClosed = false;
  void closed.finally(() => { isClosed = true; });
  let termSent = false;
  let pid: number | undefined;
  for (let i = 0; i < 50 && !isClosed; i++) {
    pid = await readPidFile(pidFile);
    if (pid) {
      await killTree(pid);
      break;
    }
    if (reaper && !termSent) { child.kill("SIGTERM"); termSent = true; }
    await sleep(20);
  }
  // runc exits once the process is gone and its output pipes are closed; a background
  // process that escaped the tree (re-parented before the scan) may hold them: kill runc then.
  await Promise.race([closed, sleep(termSent && !pid ? EXEC_TERM_WAIT_MS : 1000)]);
  if (!isClosed) child.kill("SIGKILL");
}

/** Host pids of `root` and everything it forked (from /proc's parent links). */
export async function processTree(root: number): Promise<number[]> {
  const children = new Map<number, number[]>();
  for (const e of await readdir("/proc").catch(() => [] as string[])) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = await readFile(`/proc/${e}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(e));
      children.set(ppid, list);
    } catch { /* exited meanwhile */ }
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length) {
    const p = queue.shift()!;
    out.push(p);
    queue.push(...(children.get(p) ?? []));
  }
  return out;
}

/**
 * Kills the exec'd process and its descendants: children would otherwise be re-parented to
 * the container's init, keep running and hold the output pipes open. The tree is stopped
 * first so nothing forks between the scan and the kill.
 */
async function killTree(pid: number): Promise<void> {
  const signal = (pids: number[], sig: NodeJS.Signals) => { for (const p of pids) try { process.kill(p, sig); } catch { /* gone */ } };
  signal(await processTree(pid), "SIGSTOP");
  const tree = await processTree(pid);
  signal(tree, "SIGKILL");
  signal(tree, "SIGCONT");
}

async function ensureGone(pidFile: string): Promise<void> {
  const pid = await readPidFile(pidFile);
  if (!pid) return;
  for (let i = 0; i < 100 && isAlive(pid) && !(await isZombie(pid)); i++) {
    try { process.kill(pid, "SIGKILL"); } catch { /* gone */ }
    await sleep(20);
  }
}

async function isZombie(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) === "Z";
  } catch {
    return true;
  }
}

/** runc without a json log writes `time=... level=error msg="..."`; keep only the message. */
export function stripLogrus(text: string): string {
  return text.split("\n").map((l) => {
    const m = /level=(?:error|fatal) msg="((?:[^"\\]|\\.)*)"/.exec(l);
    return m ? m[1]!.replace(/\\"/g, "\"").replace(/\\\\/g, "\\") : l;
  }).join("\n");
}

function signalNumber(sig: NodeJS.Signals | null): number {
  return sig ? (osConstants.signals as Record<string, number>)[sig] ?? 0 : 0;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
