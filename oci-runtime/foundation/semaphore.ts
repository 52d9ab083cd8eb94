// A counting semaphore (at most `n` sections run at once; a freed slot goes to the
// longest waiter, so a newcomer never barges ahead of it; a section may give its slot back
// before it ends) and mapLimit over it.

export class Semaphore {
  #free: number;
  readonly #waiters: (() => void)[] = [];

  constructor(n: number) {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`semaphore size must be a positive integer, got ${n}`);
    this.#free = n;
  }

  /**
   * Runs `fn` in a slot. `release` gives the slot back before `fn` ends (the rest of `fn` no
   * longer counts against `n`); calling it again, or the end of `fn`, gives nothing back twice.
   */
  async run<T>(fn: (release: () => void) => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((r) => this.#waiters.push(r));
    let held = true;
    const release = () => {
      if (!held) return;
      held = false;
      const next = this.#waiters.shift();
      if (next) next();
      else this.#free++;
    };
    try {
      return await fn(release);
    } finally {
      release();
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
