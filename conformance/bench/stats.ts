// Summary statistics for latency samples (milliseconds or seconds, whatever the caller uses).

/** Nearest-rank percentile (p in 0..100) of unsorted samples; NaN for no samples. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export interface Summary { n: number; p50: number; p95: number; min: number; max: number; mean: number }

export function summarize(samples: readonly number[]): Summary {
  const n = samples.length;
  const sum = samples.reduce((a, b) => a + b, 0);
  return {
    n,
    p50: percentile(samples, 50),
    p95: percentile(samples, 95),
    min: n ? Math.min(...samples) : Number.NaN,
    max: n ? Math.max(...samples) : Number.NaN,
    mean: n ? sum / n : Number.NaN,
  };
}

/** Runs `fn` and returns its result with the elapsed wall time in milliseconds. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const start = performance.now();
  const value = await fn();
  return { ms: performance.now() - start, value };
}
