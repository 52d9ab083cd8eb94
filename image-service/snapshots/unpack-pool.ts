// Layers are unpacked on worker threads (unpack-worker.ts), so a pull uses both cores: the
// main thread receives the download and hands its bytes over; a worker decompresses, hashes,
// parses tar and creates the files (unpackLayer, unchanged). Each layer in flight gets a worker
// of its own while there are fewer than `maxWorkers`, else shares the least busy one; an idle
// worker ends after `idleMs`, so a node that is not pulling holds none. Hand-over is bounded:
// at most MAX_UNACKED bytes of a layer wait in its worker's queue, and the download waits for
// the worker beyond that.
//
// The digests are still checked before the layer is flushed (the worker asks the main thread
// at the flush, and a refusal fails the unpack), the flush is the caller's shared syncfs, and a
// failed unpack returns only once the worker has stopped writing into the directory: after its
// "failed" answer (the layer's helper aborted), or after the worker thread has exited (berth-layer
// dies with the thread that started it, PR_SET_PDEATHSIG).
//
// berthd's V8 flags (bin/berthd: a 1 MB semi-space, no optimizing compiler) are process-wide:
// they hold in the workers too.
import { Worker } from "node:worker_threads";
import type { Compression } from "../registry/media-types.ts";
import { BreakoutError } from "./safe-path.ts";
import { LayerLimitError, TarError } from "./tar-reader.ts";
import type { RawInput, UnpackLimits, UnpackOptions, UnpackResult } from "./unpack.ts";

/** Bytes handed to a worker that it has not yet taken. */
export const MAX_UNACKED = 4 << 20;
/** Input is handed over in batches of about this size (one message per batch). */
export const HANDOVER_BATCH = 512 << 10;
/**
 * An idle worker ends after this long. kubelet pulls one image at a time by default, and the
 * next pull follows within milliseconds; a worker costs about 50 ms of CPU to start.
 */
export const DEFAULT_IDLE_MS = 1_000;
/** close() waits this long for the layers in flight to stop before it ends the threads. */
export const CLOSE_GRACE_MS = 5_000;

/** No worker could start (its module failed to load): the caller unpacks on its own thread. Nothing of the source was read. */
export class UnpackWorkersUnavailable extends Error {
  constructor(why: string) { super(`layer unpack workers are unavailable: ${why}`); this.name = "UnpackWorkersUnavailable"; }
}

export interface StartJob { t: "start"; id: number; compression: Compression; dir: string; helper?: string; limits?: Partial<UnpackLimits> }
export type ToWorker =
  | StartJob
  | { t: "data"; id: number; chunk: ArrayBuffer }
  | { t: "end"; id: number }
  | { t: "abort"; id: number; message: string }
  | { t: "synced"; id: number; error?: string };
export interface WorkerError { kind: "limit" | "tar" | "breakout" | "other"; message: string; limit?: string; entry?: string; code?: string }
export type FromWorker =
  | { t: "ready"; id: 0 }
  | { t: "ack"; id: number; bytes: number }
  | { t: "sync"; id: number; diffId: string; raw: RawInput }
  | { t: "done"; id: number; result: UnpackResult }
  | { t: "failed"; id: number; error: WorkerError };

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
  /** The worker's module (tests); default: unpack-worker beside this file. */
  module?: URL;
}

interface Job { message: (m: FromWorker) => void; exit: (err: Error) => void; settled: Promise<unknown>; abort: () => void }
/** A worker and the layers in flight on it, by job id. */
interface Slot { worker: Worker; jobs: Map<number, Job>; ready: Promise<void>; idleTimer?: NodeJS.Timeout; exited: Promise<void> }

/** URL of the worker's module: the .ts source when running from sources, the compiled .js in dist/. */
function workerUrl(): URL {
  return new URL(import.meta.url.endsWith(".ts") ? "./unpack-worker.ts" : "./unpack-worker.js", import.meta.url);
}

export class UnpackPool {
  #max: number;
  #idleMs: number;
  #module: URL;
  #slots = new Set<Slot>();
  #nextId = 1;
  #closed = false;
  /** Why no worker can start (a worker ended before its modules loaded). */
  #unavailable: string | undefined;

  constructor(opts: UnpackPoolOptions) {
    this.#max = Math.max(1, opts.maxWorkers);
    this.#idleMs = opts.idleMs ?? DEFAULT_IDLE_MS;
    this.#module = opts.module ?? workerUrl();
  }

  /** Workers alive now (busy or idle). */
  get workers(): number { return this.#slots.size; }

  #spawn(): Slot {
    const worker = new Worker(this.#module);
    let failure: Error | undefined;
    let readyFn!: () => void;
    let notReady!: (err: Error) => void;
    const ready = new Promise<void>((resolve, reject) => { readyFn = resolve; notReady = reject; });
    ready.catch(() => {});
    let exitedFn!: () => void;
    const exited = new Promise<void>((r) => { exitedFn = r; });
    const slot: Slot = { worker, jobs: new Map(), ready, exited };
    worker.on("message", (m: FromWorker) => {
      if (m.t === "ready") { readyFn(); return; }
      slot.jobs.get(m.id)?.message(m);
    });
    // Settled only at "exit": by then the thread, and with it every helper it started, is gone.
    worker.on("error", (err) => { failure ??= err; });
    worker.on("exit", (code) => {
      exitedFn();
      const err = new Error(`layer unpack worker ${failure ? `failed: ${failure.message}` : `exited (code ${code})`}`);
      notReady(err);
      if (!this.#slots.delete(slot)) return;
      clearTimeout(slot.idleTimer);
      for (const j of slot.jobs.values()) j.exit(err);
    });
    this.#slots.add(slot);
    return slot;
  }

  /** The worker with the fewest layers in flight; a new one while there are fewer than the most and none is idle. */
  #acquire(id: number, job: Job): Slot {
    if (this.#closed) throw new Error("layer unpacking has stopped");
    if (this.#unavailable) throw new UnpackWorkersUnavailable(this.#unavailable);
    let best: Slot | undefined;
    for (const s of this.#slots) if (!best || s.jobs.size < best.jobs.size) best = s;
    if (!best || (best.jobs.size > 0 && this.#slots.size < this.#max)) best = this.#spawn();
    if (best.jobs.size === 0) { clearTimeout(best.idleTimer); best.worker.ref(); }
    best.jobs.set(id, job);
    return best;
  }

  #release(slot: Slot, id: number) {
    slot.jobs.delete(id);
    if (slot.jobs.size > 0 || !this.#slots.has(slot)) return;
    slot.worker.unref();
    slot.idleTimer = setTimeout(() => { this.#slots.delete(slot); void slot.worker.terminate(); }, this.#idleMs);
    slot.idleTimer.unref();
  }

  /**
   * unpackLayer on a worker thread: same arguments and result. `opts.sync` (required here) and
   * `opts.beforeSync` run on this thread. Throws UnpackWorkersUnavailable, having read nothing
   * of `src`, when no worker can start.
   */
  async unpack(src: AsyncIterable<Buffer>, compression: Compression, dir: string, opts: UnpackOptions & { sync: () => Promise<void> }): Promise<UnpackResult> {
    const id = this.#nextId++;
    let unacked = 0;
    let ackWaiter: (() => void) | undefined;
    const wakeFeeder = () => { const w = ackWaiter; ackWaiter = undefined; w?.(); };
    let refused: unknown;
    let feedFailure: unknown;
    let settle!: { resolve: (r: UnpackResult) => void; reject: (err: Error) => void };
    const outcome = new Promise<UnpackResult>((resolve, reject) => { settle = { resolve, reject }; });
    outcome.catch(() => {});
    let done = false;
    let started = false;
    const settled = outcome.finally(() => { done = true; wakeFeeder(); });
    settled.catch(() => {});
    const slot = this.#acquire(id, {
      settled,
      abort: () => {
        if (done) return;
        if (started) send({ t: "abort", id, message: "layer unpacking has stopped" });
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
          case "done": settle.resolve(m.result); return;
          case "failed": settle.reject(workerError(m.error)); return;
        }
      },
    });
    const send = (m: ToWorker, transfer?: ArrayBuffer[]) => slot.worker.postMessage(m, transfer);
    try {
      try {
        await Promise.race([slot.ready, settled]);
      } catch (err) {
        if (!this.#closed) {
          this.#unavailable ??= (err as Error).message;
          throw new UnpackWorkersUnavailable(this.#unavailable);
        }
        throw err;
      }
      started = true;
      send({ t: "start", id, compression, dir, ...(opts.helper ? { helper: opts.helper } : {}), ...(opts.limits ? { limits: opts.limits } : {}) });
      const feeding = (async () => {
        try {
          let batch: Buffer[] = [];
          let batched = 0;
          const flush = async () => {
            // A buffer of its own (never a slice of Node's pool), so it can be transferred.
            const view = Buffer.allocUnsafeSlow(batched);
            const ab = view.buffer as ArrayBuffer;
            let o = 0;
            for (const c of batch) o += c.copy(view, o);
            batch = [];
            unacked += batched;
            batched = 0;
            send({ t: "data", id, chunk: ab }, [ab]);
            while (unacked > MAX_UNACKED && !done) await new Promise<void>((r) => { ackWaiter = r; });
          };
          for await (const c of src) {
            if (done) break;
            batch.push(c);
            batched += c.length;
            // A worker that has taken everything gets the bytes at once; a busy one in batches.
            if (batched >= HANDOVER_BATCH || unacked === 0) await flush();
          }
          if (batched && !done) await flush();
          if (!done) send({ t: "end", id });
        } catch (err) {
          // Only a failure the worker has not already answered for is the unpack's.
          if (!done) {
            feedFailure = err;
            send({ t: "abort", id, message: (err as Error).message ?? String(err) });
          }
        }
      })();
      try {
        const res = await outcome;
        await feeding;
        return res;
      } catch (err) {
        // The worker has stopped writing (it answered, or its thread is gone). The download is
        // not waited for: it ends at its next chunk (or its stall timeout), seeing `done`.
        throw refused ?? feedFailure ?? err;
      }
    } finally {
      this.#release(slot, id);
    }
  }

  /**
   * Ends every worker (berthd stopping). The layers in flight are stopped and fail; after
   * CLOSE_GRACE_MS the threads are ended regardless (their helpers die with them).
   */
  async close(): Promise<void> {
    this.#closed = true;
    const slots = [...this.#slots];
    const jobs = slots.flatMap((s) => [...s.jobs.values()]);
    for (const j of jobs) j.abort();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled(jobs.map((j) => j.settled)),
      new Promise((r) => { timer = setTimeout(r, CLOSE_GRACE_MS); }),
    ]);
    clearTimeout(timer);
    for (const s of slots) { clearTimeout(s.idleTimer); void s.worker.terminate(); }
    await Promise.all(slots.map((s) => s.exited));
  }
}
