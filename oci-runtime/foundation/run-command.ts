// Runs a helper binary (runc, mount, unshare, a CNI plugin, iptables) to completion, no
// shell: optional stdin, environment, working directory. Every run is bounded: the binary
// starts in its own process group (and session) and that whole group is SIGKILLed when
// the timeout (default DEFAULT_TIMEOUT_MS) passes or the caller's AbortSignal fires (an
// RPC's deadline or cancellation). Output is collected as text, up to MAX_OUTPUT bytes per
// stream. Never rejects: a binary that cannot be started at all (ENOENT, EACCES) comes back
// as `spawnError`, whether its output goes to pipes or to a file.
//
// berthd hands every run to berth-spawn (spawner.ts) once it has called useSpawner: berthd then
// does not fork for them. Without one (tests of single modules, a machine without the helper) the
// binary is started here with child_process.spawn; both paths give the same results.
import { spawn } from "node:child_process";
import { closeSync, constants as fsc, fstatSync, openSync, readSync, rmSync } from "node:fs";
import { BerthError, Code, deadlineExceeded, failedPrecondition } from "./errdefs.ts";
import type { Spawner } from "./spawner.ts";

let spawner: Spawner | undefined;

/** Routes every later runCommand through `s` (berthd's berth-spawn); undefined: fork here again. */
export function useSpawner(s: Spawner | undefined): void {
  spawner = s;
}

/** The berth-spawn runs go through, if berthd set one (the monitor's start uses it directly). */
export function currentSpawner(): Spawner | undefined {
  return spawner && !spawner.broken ? spawner : undefined;
}

/** The limit for a run that names none: nothing berth runs should take two minutes. */
export const DEFAULT_TIMEOUT_MS = 120_000;
/** Limits per kind of helper: mount/umount/unshare, and iptables (whose -w waits for the xtables lock). */
export const MOUNT_TIMEOUT_MS = 30_000;
export const IPTABLES_TIMEOUT_MS = 30_000;
/** Bytes kept of each of stdout and stderr (and of an output file); the rest is dropped. */
export const MAX_OUTPUT = 4 << 20;

export interface RunOptions {
  /** Written to the binary's stdin, which is then closed; absent: stdin is /dev/null. */
  stdin?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** SIGKILL the binary's process group after this many ms (absent or 0: DEFAULT_TIMEOUT_MS). */
  timeoutMs?: number;
  /** SIGKILL the binary's process group when this fires (the RPC's deadline or cancellation). */
  signal?: AbortSignal;
  /**
   * Send stdout and stderr to this file instead of pipes, and read it back (as `stderr`) once the
   * binary exits. For binaries that hand their stdio on to a long-lived child, which would hold
   * pipes open: `runc create` gives its own to the container's init.
   */
  outputFile?: string;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** The limit that applied, in ms (set when timedOut). */
  timeoutMs?: number;
  /** Set when the caller's signal fired before the binary finished (the binary was killed). */
  aborted?: unknown;
  /** Set when the binary could not be started at all (ENOENT, EACCES). */
  spawnError?: Error;
}

class Capped {
  readonly chunks: Buffer[] = [];
  size = 0;
  dropped = 0;
  /** Counts bytes a producer already dropped. */
  drop(n: number): void {
    this.dropped += n;
  }
  push(b: Buffer): void {
    const room = MAX_OUTPUT - this.size;
    if (room <= 0) { this.dropped += b.length; return; }
    const part = b.length <= room ? b : b.subarray(0, room);
    this.chunks.push(part);
    this.size += part.length;
    this.dropped += b.length - part.length;
  }
  text(): string {
    const s = Buffer.concat(this.chunks).toString("utf8");
    return this.dropped ? `${s}\n[${this.dropped} more bytes dropped: output is limited to ${MAX_OUTPUT} bytes]` : s;
  }
}

function readCapped(path: string): Buffer {
  let fd: number;
  try { fd = openSync(path, "r"); } catch { return Buffer.alloc(0); }
  try {
    // Sized to the file (at most MAX_OUTPUT): zero-filling 4 MiB on every runtime call cost
    // berthd 1.2 s of CPU while 230 pods were removed.
    const buf = Buffer.allocUnsafe(Math.min(MAX_OUTPUT, fstatSync(fd).size));
    let n = 0;
    for (let r; n < buf.length && (r = readSync(fd, buf, n, buf.length - n, n)) > 0;) n += r;
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

export function runCommand(file: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const limit = opts.timeoutMs && opts.timeoutMs > 0 ? opts.timeoutMs : DEFAULT_TIMEOUT_MS;
    const out = new Capped();
    const err = new Capped();
    const finish = (r: Omit<RunResult, "stdout" | "stderr" | "timedOut">) => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
      if (opts.outputFile !== undefined) {
        err.push(readCapped(opts.outputFile));
        rmSync(opts.outputFile, { force: true });
      }
      resolve({
        ...r,
        stdout: out.text(), stderr: err.text(), timedOut,
        ...(timedOut ? { timeoutMs: limit } : {}),
        ...(aborted !== undefined ? { aborted } : {}),
      });
    };
    let done = false;
    let timedOut = false;
    let aborted: unknown;
    let timer: NodeJS.Timeout | undefined;
    let kill = () => { /* nothing started yet */ };
    const onAbort = () => { aborted = opts.signal?.reason ?? new Error("aborted"); kill(); };
    if (opts.signal?.aborted) {
      aborted = opts.signal.reason ?? new Error("aborted");
      resolve({ code: null, signal: null, stdout: "", stderr: "", timedOut: false, aborted });
      return;
    }
    const via = currentSpawner();
    if (via) {
      let run;
      try {
        run = via.run({ file, args, env: opts.env ?? process.env, cwd: opts.cwd, stdin: opts.stdin, outputFile: opts.outputFile }, (o) => {
          out.push(o.stdout); out.drop(o.droppedOut);
          err.push(o.stderr); err.drop(o.droppedErr);
          finish({ code: o.code, signal: o.signal, ...(o.spawnError ? { spawnError: o.spawnError } : {}) });
        });
      } catch (e) {
        // A NUL byte in the file, an argument or the environment, as spawn throws.
        resolve({ code: null, signal: null, stdout: "", stderr: "", timedOut: false, spawnError: e as Error });
        return;
      }
      kill = () => { if (!done) run.kill(); };
      timer = setTimeout(() => { timedOut = true; kill(); }, limit);
      opts.signal?.addEventListener("abort", onAbort, { once: true });
      return;
    }
    let outFd: number | undefined;
    try {
      outFd = opts.outputFile === undefined ? undefined : openSync(opts.outputFile, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_TRUNC | fsc.O_NOFOLLOW, 0o600);
    } catch (e) {
      resolve({ code: null, signal: null, stdout: "", stderr: "", timedOut: false, spawnError: e as Error });
      return;
    }
    let child;
    try {
      child = spawn(file, args, {
        env: opts.env ?? process.env,
        cwd: opts.cwd,
        stdio: [opts.stdin === undefined ? "ignore" : "pipe", outFd ?? "pipe", outFd ?? "pipe"],
        detached: true,
      });
    } catch (e) {
      // Synchronous spawn failures (an argument with a NUL byte, EMFILE...).
      if (outFd !== undefined) { closeSync(outFd); rmSync(opts.outputFile!, { force: true }); }
      resolve({ code: null, signal: null, stdout: "", stderr: "", timedOut: false, spawnError: e as Error });
      return;
    }
    if (outFd !== undefined) closeSync(outFd);
    kill = () => {
      if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
      try { process.kill(-child.pid, "SIGKILL"); } catch { try { child.kill("SIGKILL"); } catch { /* gone */ } }
    };
    timer = setTimeout(() => { timedOut = true; kill(); }, limit);
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    child.stdout?.on("data", (b: Buffer) => out.push(b));
    child.stderr?.on("data", (b: Buffer) => err.push(b));
    // A binary that never started emits "error" and no "exit": finish here, or the caller waits forever.
    child.on("error", (e) => { if (child.pid === undefined) finish({ code: null, signal: null, spawnError: e }); });
    // With an output file nothing is piped, so "exit" is the end (a child holding the file does not delay it).
    child.on(outFd === undefined ? "close" : "exit", (code: number | null, signal: NodeJS.Signals | null) => {
      finish({ code, signal });
    });
    if (opts.stdin !== undefined) {
      child.stdin!.on("error", () => { /* the child may exit without reading stdin */ });
      child.stdin!.end(opts.stdin);
    }
  });
}

/** A one-line summary of a failed run for error messages (names the limit when it timed out). */
export function describeFailure(r: RunResult): string {
  if (r.spawnError) return r.spawnError.message;
  if (r.aborted !== undefined) return `killed: ${r.aborted instanceof Error ? r.aborted.message : String(r.aborted)}`;
  if (r.timedOut) return `timed out after ${r.timeoutMs !== undefined ? `${r.timeoutMs / 1000} s` : "its limit"} (killed with its process group)`;
  const text = (r.stderr.trim() || r.stdout.trim()).split("\n").slice(-3).join("; ");
  const how = r.signal ? `killed by ${r.signal}` : `exit status ${r.code}`;
  return text ? `${how}: ${text}` : how;
}

/**
 * The typed error for a run that did not finish normally, or undefined when it did (whatever its
 * exit status): `what` names the command. A timeout is DEADLINE_EXCEEDED naming the limit; a
 * caller's abort keeps the abort's own code (DEADLINE_EXCEEDED, CANCELLED); a binary that
 * cannot be started is FAILED_PRECONDITION naming it.
 */
export function unfinishedError(what: string, file: string, r: RunResult): BerthError | undefined {
  if (r.spawnError) return failedPrecondition(`${what}: cannot run ${file}: ${r.spawnError.message}`, r.spawnError);
  if (r.aborted !== undefined) {
    const reason = r.aborted instanceof BerthError ? r.aborted : undefined;
    const msg = `${what}: ${file} was killed with its process group: ${r.aborted instanceof Error ? r.aborted.message : String(r.aborted)}`;
    return new BerthError(reason?.code ?? Code.CANCELLED, msg, { cause: r.aborted });
  }
  if (r.timedOut) return deadlineExceeded(`${what}: ${file} did not finish within its limit of ${(r.timeoutMs ?? 0) / 1000} s and was killed with its process group`);
  return undefined;
}
