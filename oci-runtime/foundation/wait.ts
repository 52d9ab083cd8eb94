// The one polling wait: asks `probe` until it answers (not undefined), the time runs out or the
// signal aborts. Every wait is bounded; callers decide what running out means (usually an error
// naming the limit). Use it only where nothing can notify (exit files, /proc, inodes).
import { setTimeout as sleep } from "node:timers/promises";
import { monotonicMs } from "./clock.ts";

export interface WaitClock {
  /** Milliseconds, monotonic enough for deadlines. */
  now(): number;
  /** Resolves after `ms`, or rejects when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const realWaitClock: WaitClock = {
  now: monotonicMs,
  sleep: (ms, signal) => sleep(ms, undefined, signal ? { signal } : undefined),
};

export interface WaitOptions {
  /** Upper bound of the whole wait (required: nothing waits forever). */
  timeoutMs: number;
  /** Pause between two probes (default 50 ms, never longer than the time left). */
  intervalMs?: number;
  /** Aborting rejects the wait with the signal's reason. */
  signal?: AbortSignal | undefined;
  clock?: WaitClock;
}

/**
 * Polls `probe` until it returns a value other than undefined and returns it; returns undefined
 * when `timeoutMs` passed first. The probe runs at least once, even with a zero timeout.
 */
export async function waitFor<T>(probe: () => Promise<T | undefined> | T | undefined, o: WaitOptions): Promise<T | undefined> {
  if (!Number.isFinite(o.timeoutMs) || o.timeoutMs < 0) throw new RangeError(`wait timeout must be a finite number >= 0, got ${o.timeoutMs}`);
  const clock = o.clock ?? realWaitClock;
  const interval = Math.max(1, o.intervalMs ?? 50);
  const end = clock.now() + o.timeoutMs;
  for (;;) {
    o.signal?.throwIfAborted();
    const v = await probe();
    if (v !== undefined) return v;
    const left = end - clock.now();
    if (left <= 0) return undefined;
    try {
      await clock.sleep(Math.min(interval, left), o.signal);
    } catch (err) {
      o.signal?.throwIfAborted(); // the signal's own reason, not the timer's AbortError
      throw err;
    }
  }
}

/** waitFor for a condition: true when it held within the time, false otherwise. */
export async function waitUntil(cond: () => Promise<boolean> | boolean, o: WaitOptions): Promise<boolean> {
  return (await waitFor(async () => ((await cond()) ? true : undefined), o)) === true;
}
