// Gives memory back after pods go away. When pods and containers are removed, the V8 heap that
// held them is garbage, but V8 keeps the pages it frees in a pool for reuse instead of returning
// them to the system, and its own memory reducer did not run within 10 s of a berthd going idle.
// Measured on a berthd run up to 250 pods and back down to 20: 65.6 MB of RSS; after a regular
// full GC still 65.2 MB; after one "last resort" GC (V8's CollectAllAvailableGarbage, which also
// releases the pooled pages) 60.2 MB, against 57.9 MB at the first 20 pods (the rest is malloc's,
// which keeps what it freed in the middle of its heap).
//
// So once removals stop (no RemoveContainer, RemovePodSandbox or StopPodSandbox for IDLE_MS),
// berthd asks for that collection: at most once per MIN_INTERVAL_MS, and only after a removal.
// It asks for one IDLE_MS after it starts serving too: start-up (modules, config, the records it
// recovers) leaves garbage and pooled pages of its own; idle RSS 54.9 -> 54.3 MB (berthd alone,
// four starts each).
// It blocks the event loop while it runs (tens of ms on berthd's heap of about 10 MB). It needs
// node's --expose-gc (bin/berthd's default flags); without it nothing happens.
// After each collection berthd calls glibc's malloc_trim(0) (oci-runtime/foundation/malloc-trim.ts,
// when the berth-trim.node addon is installed): what is left above is malloc's, the pages the
// frees left in the middle of its heap. In the bench (berth alone, memory and scale steps, two
// pairs of runs), back at 20 pods after 250 went from 58.9 and 60.3 MB to 55.3 and 54.8 MB
// (the first 20 pods: 60.1-60.6 MB either way), after removing all pods from 61.2 and 62.4 to 58.4
// and 57.9 MB, and idle from 54.3 to 53.6 MB.

import { monotonicMs } from "../oci-runtime/foundation/clock.ts";

/** After the last removal, this long without another before the collection. */
export const IDLE_MS = 1_000;
/** At most one collection this often. */
export const MIN_INTERVAL_MS = 10_000;
/** The RPCs after which there is garbage to give back. */
const REMOVALS = new Set(["RemoveContainer", "RemovePodSandbox", "StopPodSandbox"]);

type GcOptions = { type: "major"; execution: "sync"; flavor: "last-resort" };
export type GcFunction = (opts: GcOptions) => void;

export interface IdleGcOptions {
  /** The collector: globalThis.gc under --expose-gc. */
  gc: GcFunction | undefined;
  idleMs?: number;
  minIntervalMs?: number;
  now?: () => number;
  /** Gives malloc's free pages back after each collection (malloc-trim.ts); true when it gave some. */
  trim?: () => boolean;
  /** Each collection, with its duration (ms) and what the trim did (undefined: no trim). */
  onCollect?: (ms: number, after: "start-up" | "removals", trimmed: boolean | undefined) => void;
}

export class IdleGc {
  readonly #gc: GcFunction | undefined;
  readonly #idleMs: number;
  readonly #minIntervalMs: number;
  readonly #now: () => number;
  readonly #trim: (() => boolean) | undefined;
  readonly #onCollect: IdleGcOptions["onCollect"];
  #timer: NodeJS.Timeout | undefined;
  #last = -Infinity;
  #collections = 0;

  constructor(opts: IdleGcOptions) {
    this.#gc = opts.gc;
    this.#idleMs = opts.idleMs ?? IDLE_MS;
    this.#minIntervalMs = opts.minIntervalMs ?? MIN_INTERVAL_MS;
    this.#now = opts.now ?? monotonicMs;
    this.#onCollect = opts.onCollect;
    this.#trim = opts.trim;
  }

  /** Whether collections can run (node was started with --expose-gc). */
  get enabled(): boolean { return this.#gc !== undefined; }
  /** Collections run so far. */
  get collections(): number { return this.#collections; }

  /** Called after each RPC (RpcObserver's arguments): a successful removal (re)arms the timer. */
  observe(method: string, code: number): void {
    if (code === 0 && REMOVALS.has(method)) this.#arm("removals");
  }

  /** Called once berthd serves: a collection idleMs later, unless a removal re-arms it first. */
  started(): void { this.#arm("start-up"); }

  #arm(after: "start-up" | "removals"): void {
    if (!this.#gc) return;
    clearTimeout(this.#timer);
    // Within MIN_INTERVAL_MS of the last collection, the timer waits for the rest of it.
    const wait = Math.max(this.#idleMs, this.#last + this.#minIntervalMs - this.#now());
    this.#timer = setTimeout(() => this.#collect(after), wait);
    this.#timer.unref();
  }

  #collect(after: "start-up" | "removals"): void {
    this.#timer = undefined;
    const t = this.#now();
    this.#gc!({ type: "major", execution: "sync", flavor: "last-resort" });
    const trimmed = this.#trim?.();
    this.#last = this.#now();
    this.#collections++;
    this.#onCollect?.(this.#last - t, after, trimmed);
  }

  /** Stops a pending collection (shutdown). */
  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/** globalThis.gc when node runs with --expose-gc. */
export const exposedGc = (): GcFunction | undefined => {
  const g = (globalThis as { gc?: unknown }).gc;
  return typeof g === "function" ? (g as GcFunction) : undefined;
};
