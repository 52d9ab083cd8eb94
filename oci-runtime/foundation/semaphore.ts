// A counting semaphore (at most `n` sections run at once; a freed slot goes to the
// longest waiter, so a newcomer never barges ahead of it) and mapLimit over it.

export class Semaphore {
  #free: number;
  readonly #waiters: (() => void)[] = [];

  constructor(n: number) {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`semaphore size must be a positive integer, got ${n}`);
    this.#free = n;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((r) => this.#waiters.push(r));
    try {
      return await fn();
    } finally {
      const next = this.#waiters.shift();
      if (next) next();
      else this.#free++;
    }
  }

  /** Sections waiting for a slot (for tests and metrics). */
  get waiting(): number { return this.#waiters.length; }
}

/** Maps items through fn with at most `max` calls in flight; results keep the input order. */
export function mapLimit<T, R>(items: readonly T[], max: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const sem = new Semaphore(max);
  return Promise.all(items.map((item) => sem.run(() => fn(item))));
}
