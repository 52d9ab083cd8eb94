// A counting semaphore: at most `max` of the wrapped calls run at once.

export type Limiter = <T>(fn: () => Promise<T>) => Promise<T>;

export function limiter(max: number): Limiter {
  if (!Number.isInteger(max) || max < 1) throw new RangeError(`limiter max must be a positive integer, got ${max}`);
  let active = 0;
  const waiting: Array<() => void> = [];
  const release = () => {
    active--;
    waiting.shift()?.();
  };
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    if (active >= max) await new Promise<void>((r) => waiting.push(r));
    active++;
    try {
      return await fn();
    } finally {
      release();
    }
  };
}

/** Maps items through fn with at most `max` calls in flight; results keep the input order. */
export function mapLimit<T, R>(items: readonly T[], max: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const run = limiter(max);
  return Promise.all(items.map((item) => run(() => fn(item))));
}
