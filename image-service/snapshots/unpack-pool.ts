// Layers are unpacked in separate node processes (unpack-worker.ts, forked from berthd), so a
// pull uses both cores: the process downloads the layer itself (a DirectDownload, with the GET
// berthd's client described) or berthd writes the bytes to its stdin (a layer berthd already has,
// or the rest of a download the process could not finish); the process decompresses, hashes,
// parses tar and creates the files (unpackLayer, unchanged).
// Each layer in flight gets a process of its own while there are fewer than `maxWorkers`, else
// shares the least busy one; an idle process ends after `idleMs`. Processes rather than worker
// threads: whatever a process allocated goes back to the system when it exits, where a worker
// thread's buffers stayed in berthd's malloc arenas (berthd kept 112-171 MB of RSS after pulling
// the bench's 103 MB image with worker threads, 88-100 MB unpacking on its main thread). The
// process runs with V8's default flags (berthd's small young generation and interpreter-only
// tiers are for a long-lived daemon, not for a short burst of tar parsing).
//
// Hand-over is bounded: at most MAX_UNACKED bytes of a layer are ahead of what its process has
// taken. The digests are still checked in berthd before the layer is flushed (the process asks
// at the flush, and a refusal fails the unpack), the flush is berthd's shared syncfs, and a
// failed unpack returns only once the process has stopped writing into the directory: after
// its "failed" answer (the layer's helper aborted), or after the process has exited (berth-layer
// dies with the process that started it, PR_SET_PDEATHSIG).
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { DirectBlob } from "../registry/http.ts";
import type { Compression } from "../registry/media-types.ts";
import { withPullMallocTunables } from "./malloc-tunables.ts";
import { BreakoutError } from "./safe-path.ts";
import { LayerLimitError, TarError } from "./tar-reader.ts";
import type { UnpackOptions, UnpackResult } from "./unpack.ts";
import {
  FRAME_ABORT, FRAME_DATA, FRAME_END, FRAME_START, frameHeader, HEARTBEAT_MS, MAX_ABORT_REASON, MAX_START_FRAME, type FromWorker, type StartJob, type ToWorker, type WorkerError,
} from "./unpack-frames.ts";

/**
 * A layer the unpack process downloads itself (berthd's own CPU per byte of a relayed download
 * is more than the process's: the pipe writes and the collection of the chunks). `rest` is the
 * blob from `offset` on, through berthd's client, for when that download stops short (`why`).
 */
export interface DirectDownload {
  blob: DirectBlob;
  rest: (offset: number, why: string) => AsyncIterable<Buffer>;
}

/** Bytes of a layer handed to its process and not yet taken by it. */
export const MAX_UNACKED = 4 << 20;
/**
 * An idle process ends after this long. kubelet pulls one image at a time by default, and the
 * next pull follows within milliseconds; a process costs about 50 ms of CPU to start.
 */
export const DEFAULT_IDLE_MS = 1_000;
/** close() waits this long for the layers in flight to stop before it kills the processes. */
export const CLOSE_GRACE_MS = 5_000;
/** Kept of a process's stderr, for the error when it fails. */
const STDERR_KEPT = 4096;

/**
 * A process with layers in flight that sends nothing for this long (its heartbeat comes every
 * HEARTBEAT_MS while its event loop turns) is killed and its layers fail: the one bound on a
 * process that is alive and ready but stuck. Waits on berth-layer (30 s per answer) and on
 * berthd's syncfs do not block its event loop.
 */
export const SILENCE_MS = 60_000;
/** A process not ready (its modules loaded) this long after its start is killed, and counts as failed to start. */
export const READY_TIMEOUT_MS = 30_000;
/** Processes that ended before they were ready, in a row, after which the pool gives up. */
export const MAX_START_FAILURES = 3;

/**
 * No process could start for this layer: the caller unpacks it itself. Nothing of the source was
 * read. `permanent` once MAX_START_FAILURES processes in a row failed to start.
 */
export class UnpackWorkersUnavailable extends Error {
  readonly permanent: boolean;
  constructor(why: string, permanent: boolean) {
    super(`layer unpack processes are unavailable: ${why}`);
    this.name = "UnpackWorkersUnavailable";
    this.permanent = permanent;
  }
}

/** Rebuilds the error a worker reported, with the class the caller maps to a gRPC code. */
export function workerError(e: WorkerError): Error {
  if (e.kind === "limit") return new LayerLimitError(e.limit ?? "layer", e.message);
  if (e.kind === "tar") return new TarError(e.message);
  if (e.kind === "breakout") {
    const err = new BreakoutError(e.entry ?? "", "");
    err.message = e.message;
    return err;
  }
  const err = new Error(e.message) as NodeJS.ErrnoException;
  if (e.code) err.code = e.code;
  return err;
}

export interface UnpackPoolOptions {
  maxWorkers: number;
  idleMs?: number;
  /** The process's module (tests); default: unpack-worker beside this file. */
  module?: URL;
  /** Default READY_TIMEOUT_MS. */
  readyTimeoutMs?: number;
  /** Default SILENCE_MS; never less than two heartbeats (2 x HEARTBEAT_MS). */
  silenceMs?: number;
}

interface Job { message: (m: FromWorker) => void; exit: (err: Error) => void; settled: Promise<unknown>; abort: () => void }
/** A process and the layers in flight in it, by job id. */
interface Slot { proc: ChildProcess; jobs: Map<number, Job>; ready: Promise<void>; idleTimer?: NodeJS.Timeout; exited: Promise<void>; drain?: Promise<void>; heard: number }

/**
 * URL of the process's module: the .ts source when running from sources; in dist/ the bundle's
 * unpack-worker.js entry, which hack/build.sh writes beside every chunk this code can be in.
 */
function workerUrl(): URL {
  return new URL(import.meta.url.endsWith(".ts") ? "./unpack-worker.ts" : "./unpack-worker.js", import.meta.url);
}

/** The line of a process's stderr that says why it failed: an error's, else the last one (not node's version line). */
function stderrReason(stderr: string): string | undefined {
  const lines = stderr.split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("at ") && !/^Node\.js v\d/.test(l));
  return lines.find((l) => /^[A-Za-z]*Error\b/.test(l)) ?? lines.at(-1);
}

/** Keeps (or stops keeping) berthd's event loop alive for a process: while it has layers, not when idle. */
function hold(proc: ChildProcess, on: boolean) {
  const handles = [proc, proc.channel, proc.stdin, proc.stderr] as ({ ref?: () => void; unref?: () => void } | null | undefined)[];
  for (const h of handles) { if (on) h?.ref?.(); else h?.unref?.(); }
}

export class UnpackPool {
  #max: number;
  #idleMs: number;
  /** Processes the idle timer let go that have not exited yet: close() waits for them too. */
  #leaving = new Set<Slot>();
  #module: URL;
  #readyTimeoutMs: number;
  #silenceMs: number;
  #slots = new Set<Slot>();
  #nextId = 1;
  #closed = false;
  /** Why no process can start (MAX_START_FAILURES ended before they were ready, in a row). */
  #unavailable: string | undefined;
  #startFailures = 0;

  constructor(opts: UnpackPoolOptions) {
    this.#max = Math.max(1, opts.maxWorkers);
    this.#idleMs = opts.idleMs ?? DEFAULT_IDLE_MS;
    this.#module = opts.module ?? workerUrl();
    this.#readyTimeoutMs = opts.readyTimeoutMs ?? READY_TIMEOUT_MS;
    // at least two heartbeats, so that a process that is fine is never taken for a stuck one
    this.#silenceMs = Math.max(2 * HEARTBEAT_MS, opts.silenceMs ?? SILENCE_MS);
  }

  /** Processes alive now (busy or idle). */
  get workers(): number { return this.#slots.size; }

  /** Process ids of the processes alive now. */
  get pids(): number[] { return [...this.#slots].map((s) => s.proc.pid ?? 0).filter((p) => p > 0); }

  #spawn(): Slot {
    // V8's defaults, not berthd's flags (bin/berthd); no inherited --inspect or the like either.
    // A gc function, for the collections unpack-worker.ts paces (gc-pacer.ts). malloc settings
    // of their own (malloc-tunables.ts), not berthd's pinned threshold.
    const proc = fork(fileURLToPath(this.#module), [], {
      execArgv: ["--disable-warning=ExperimentalWarning", "--expose-gc"],
      stdio: ["pipe", "ignore", "pipe", "ipc"],
      serialization: "json",
      env: withPullMallocTunables(process.env),
    });
    let stderr = "";
    proc.stderr!.setEncoding("utf8").on("data", (d: string) => { if (stderr.length < STDERR_KEPT) stderr += d.slice(0, STDERR_KEPT - stderr.length); });
    proc.stdin!.on("error", () => { /* EPIPE: the exit says why */ });
    let failure: Error | undefined;
    let readyFn!: () => void;
    let notReady!: (err: Error) => void;
    const ready = new Promise<void>((resolve, reject) => { readyFn = resolve; notReady = reject; });
    ready.catch(() => {});
    const readyTimer = setTimeout(() => { failure ??= new Error(`not ready within ${this.#readyTimeoutMs} ms`); proc.kill("SIGKILL"); }, this.#readyTimeoutMs);
    readyTimer.unref();
    let exitedFn!: () => void;
    const exited = new Promise<void>((r) => { exitedFn = r; });
    const slot: Slot = { proc, jobs: new Map(), ready, exited, heard: Date.now() };
    let isReady = false; // before that, READY_TIMEOUT_MS is the bound
    const watchdog = setInterval(() => {
      if (!isReady || !slot.jobs.size || Date.now() - slot.heard <= this.#silenceMs) return;
      failure ??= new Error(`sent nothing for ${this.#silenceMs / 1000} s with layers in flight (its event loop is stuck); killed`);
      proc.kill("SIGKILL");
    }, Math.min(1_000, this.#silenceMs / 4));
    watchdog.unref();
    proc.on("message", (m: FromWorker) => {
      slot.heard = Date.now();
      if (m.t === "ready") { clearTimeout(readyTimer); isReady = true; readyFn(); return; }
      if (m.t === "alive") return;
      slot.jobs.get(m.id)?.message(m);
    });
    proc.on("error", (err) => { failure ??= err; });
    // Settled only at "exit": by then the process, and with it every helper it started, is gone.
    // (A process exits by itself only without layers in flight: idle, or berthd gone.)
    proc.on("exit", (code, signal) => {
      clearTimeout(readyTimer);
      clearInterval(watchdog);
      exitedFn();
      const why = failure?.message ?? stderrReason(stderr) ?? `exited (${signal ?? `code ${code}`})`;
      const err = new Error(`layer unpack process ${proc.pid ?? "?"}: ${why}`);
      notReady(err);
      if (!this.#slots.delete(slot)) return;
      clearTimeout(slot.idleTimer);
      for (const j of slot.jobs.values()) j.exit(err);
    });
    this.#slots.add(slot);
    return slot;
  }

  /** The process with the fewest layers in flight; a new one while there are fewer than the most and none is idle. */
  #acquire(id: number, job: Job): Slot {
    if (this.#closed) throw new Error("layer unpacking has stopped");
    if (this.#unavailable) throw new UnpackWorkersUnavailable(this.#unavailable, true);
    let best: Slot | undefined;
    for (const s of this.#slots) if (!best || s.jobs.size < best.jobs.size) best = s;
    if (!best || (best.jobs.size > 0 && this.#slots.size < this.#max)) best = this.#spawn();
    if (best.jobs.size === 0) { // its silence counts from its first layer on
      clearTimeout(best.idleTimer);
      hold(best.proc, true);
      best.heard = Date.now();
    }
    best.jobs.set(id, job);
    return best;
  }

  #release(slot: Slot, id: number) {
    slot.jobs.delete(id);
    if (slot.jobs.size > 0 || !this.#slots.has(slot)) return;
    hold(slot.proc, false);
    slot.idleTimer = setTimeout(() => {
      this.#slots.delete(slot);
      this.#leaving.add(slot);
      void slot.exited.then(() => this.#leaving.delete(slot));
      // EOF on stdin and the channel closed: the process exits by itself.
      slot.proc.stdin?.end();
      if (slot.proc.connected) slot.proc.disconnect();
    }, this.#idleMs);
    slot.idleTimer.unref();
  }

  /**
   * unpackLayer in an unpack process: same arguments and result. `opts.sync` (required here)
   * and `opts.beforeSync` run in berthd. Throws UnpackWorkersUnavailable, having read nothing
   * of `src`, when no process can start.
   */
  async unpack(input: AsyncIterable<Buffer> | DirectDownload, compression: Compression, dir: string, opts: UnpackOptions & { sync: () => Promise<void> }): Promise<UnpackResult> {
    const direct = "blob" in input ? input : undefined;
    const id = this.#nextId++;
    let unacked = 0;
    let ackWaiter: (() => void) | undefined;
    const wakeFeeder = () => { const w = ackWaiter; ackWaiter = undefined; w?.(); };
    let refused: unknown;
    let feedFailure: unknown;
    /** What beforeSync accepted. */
    let checked: { diffId: string; raw: { bytes: number; digest: string } } | undefined;
    let settle!: { resolve: (r: UnpackResult) => void; reject: (err: Error) => void };
    // `done` is set at once, not in the promise's reactions: the process's messages come on
    // process.nextTick, so a "fetched" right behind a "failed" must already see it (or berthd
    // would start taking over a download for a layer that has failed).
    const outcome = new Promise<UnpackResult>((resolve, reject) => {
      settle = { resolve: (r) => { done = true; resolve(r); }, reject: (err) => { done = true; reject(err); } };
    });
    outcome.catch(() => {});
    let done = false;
    let started = false;
    /** Stopping (abort()): a download the process hands back is not taken up. */
    let aborting = false;
    /** Sending the layer's bytes (feed): from the start, or after the process's own download stopped short. */
    let feeding: Promise<void> | undefined;
    const settled = outcome.finally(() => { done = true; wakeFeeder(); });
    settled.catch(() => {});
    const send = (m: ToWorker) => { if (slot.proc.connected) slot.proc.send(m, () => { /* a send to a process that is gone: its exit says why */ }); };
    /** Writes a frame, header and body at once (frames of layers never interleave); false once the pipe is full. */
    const writeFrame = (type: number, body?: Buffer): boolean => {
      const stdin = slot.proc.stdin!;
      stdin.write(frameHeader(type, id, body?.length ?? 0));
      return body?.length ? stdin.write(body) : true;
    };
    const abortFrame = (why: string) => { writeFrame(FRAME_ABORT, Buffer.from(why.slice(0, MAX_ABORT_REASON / 4))); };
    const slot = this.#acquire(id, {
      settled,
      abort: () => {
        aborting = true;
        if (done) return;
        if (started) abortFrame("layer unpacking has stopped");
        else settle.reject(new Error("layer unpacking has stopped"));
      },
      exit: (err) => settle.reject(err),
      message: (m) => {
        switch (m.t) {
          case "ack":
            unacked -= m.bytes;
            if (unacked <= MAX_UNACKED / 2) wakeFeeder();
            return;
          case "sync":
            void (async () => {
              try {
                opts.beforeSync?.(m.diffId, m.raw);
                checked = { diffId: m.diffId, raw: { ...m.raw } };
              } catch (err) {
                refused = err;
                send({ t: "synced", id, error: "refused by the digest check" });
                return;
              }
              try {
                await opts.sync();
                send({ t: "synced", id });
              } catch (err) {
                send({ t: "synced", id, error: (err as Error).message ?? String(err) });
              }
            })();
            return;
          case "done":
            // Only a layer whose digests were checked here, and are the ones it reports.
            if (!checked || checked.diffId !== m.result.diffId || checked.raw.digest !== m.result.raw.digest || checked.raw.bytes !== m.result.raw.bytes) {
              settle.reject(new Error("layer unpack process reported a layer whose digests were not checked"));
              return;
            }
            settle.resolve(m.result);
            return;
          case "fetched":
            // The process's own download stopped: complete, or berthd sends the rest (none left
            // when it stopped at the blob's size: the end, and the digest check decides).
            if (!direct || feeding || done || aborting) return; // (a process sends this only for its own download)
            if (m.error === undefined) opts.onInputEnd?.();
            feeding = feed(m.error === undefined ? undefined : m.bytes >= direct.blob.size ? [] : direct.rest(m.bytes, m.error));
            return;
          case "failed": settle.reject(workerError(m.error)); return;
        }
      },
    });
    const stdin = slot.proc.stdin!;
    /** Sends `src` in data frames, then the end (undefined: nothing, the process ended the input itself). */
    const feed = async (src: Iterable<Buffer> | AsyncIterable<Buffer> | undefined) => {
      if (!src) return;
      try {
        for await (const c of src) {
          if (done) break;
          if (!c.length) continue;
          unacked += c.length;
          await frame(FRAME_DATA, c);
          while (unacked > MAX_UNACKED && !done) await new Promise<void>((r) => { ackWaiter = r; });
        }
        if (!done) {
          await frame(FRAME_END);
          opts.onInputEnd?.();
        }
      } catch (err) {
        // Only a failure the process has not already answered for is the unpack's.
        if (!done) {
          feedFailure = err;
          abortFrame((err as Error).message ?? String(err));
        }
      }
    };
    /** writeFrame, then waits while the pipe is full. */
    const frame = async (type: number, body?: Buffer) => {
      if (writeFrame(type, body) || done) return;
      // One wait for "drain" per process, shared by its layers.
      slot.drain ??= new Promise<void>((r) => stdin.once("drain", () => { slot.drain = undefined; r(); }));
      await Promise.race([slot.drain, settled.catch(() => {})]);
    };
    try {
      try {
        await Promise.race([slot.ready, settled]);
        this.#startFailures = 0;
      } catch (err) {
        if (this.#closed) throw err;
        const why = (err as Error).message;
        if (++this.#startFailures >= MAX_START_FAILURES) this.#unavailable ??= why;
        throw new UnpackWorkersUnavailable(why, this.#unavailable !== undefined);
      }
      started = true;
      const start: StartJob = { id, compression, dir, ...(opts.helper ? { helper: opts.helper } : {}), ...(opts.limits ? { limits: opts.limits } : {}) };
      // The process downloads the layer itself unless its description is over a start frame's
      // bound (hosts.toml headers, a token): then the download is berthd's from the first byte.
      const described = direct && Buffer.from(JSON.stringify({ ...start, fetch: direct.blob }));
      const itself = !!described && described.length <= MAX_START_FRAME;
      await frame(FRAME_START, itself ? described : Buffer.from(JSON.stringify(start)));
      if (!itself) feeding = feed(direct ? direct.rest(0, `its description is over ${MAX_START_FRAME} bytes`) : input as AsyncIterable<Buffer>);
      try {
        const res = await outcome;
        await feeding;
        return res;
      } catch (err) {
        // The process has stopped writing (it answered, or it is gone). The download is not
        // waited for: it ends at its next chunk (or its stall timeout), seeing `done`.
        throw refused ?? feedFailure ?? err;
      }
    } finally {
      this.#release(slot, id);
    }
  }

  /**
   * Ends every process (berthd stopping). The layers in flight are stopped and fail; after
   * CLOSE_GRACE_MS the processes are killed regardless (their helpers die with them). Processes
   * already let go when idle are waited for too, and killed after the same grace.
   */
  async close(): Promise<void> {
    this.#closed = true;
    const slots = [...this.#slots];
    const leaving = [...this.#leaving];
    const jobs = slots.flatMap((s) => [...s.jobs.values()]);
    for (const j of jobs) j.abort();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled(jobs.map((j) => j.settled)),
      new Promise((r) => { timer = setTimeout(r, CLOSE_GRACE_MS); }),
    ]);
    clearTimeout(timer);
    for (const s of slots) {
      clearTimeout(s.idleTimer);
      hold(s.proc, true); // until it has exited
      if (s.jobs.size) s.proc.kill("SIGKILL");
      else { s.proc.stdin?.end(); if (s.proc.connected) s.proc.disconnect(); }
    }
    await Promise.all(slots.map((s) => s.exited));
    // Let go by the idle timer, these exit by themselves; one still there after the grace is killed.
    if (leaving.length) {
      const gone = Promise.all(leaving.map((s) => s.exited));
      let late: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([gone.then(() => false), new Promise<boolean>((r) => { late = setTimeout(() => r(true), CLOSE_GRACE_MS); })]);
      clearTimeout(late);
      if (timedOut) { for (const s of leaving) s.proc.kill("SIGKILL"); await gone; }
    }
  }
}
