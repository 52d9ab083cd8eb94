// Time as berth records it.

/** Nanoseconds since the epoch, as the CRI's int64 timestamps. */
export const nowNs = (): bigint => BigInt(Date.now()) * 1_000_000n + (process.hrtime.bigint() % 1_000_000n);

/**
 * Milliseconds on a monotonic clock, for durations and deadlines. Not `performance.now()`: the
 * global `performance` loads all of node:perf_hooks at its first use (its histograms, observers and
 * timerify; 1.2 MB of RSS in a bare node), where process.hrtime is already there.
 */
export const monotonicMs = (): number => Number(process.hrtime.bigint()) / 1e6;
