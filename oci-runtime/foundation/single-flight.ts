// Shares one in-flight promise per key; and a counting semaphore.

export class SingleFlight<T> {
  #inflight = new Map<string, Promise<T>>();
  do(key: string, fn: () => Promise<T>): Promise<T> {
    const cur = this.#inflight.get(key);
    if (cur) return cur;
    const p = fn().finally(() => this.#inflight.delete(key));
    this.#inflight.set(key, p);
    return p;
  }
}

export class Semaphore {
  #free: number;
  #waiters: (() => void)[] = [];
  constructor(n: number) { this.#free = n; }
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
}

/** Serialises async sections. */
export class Mutex {
  #tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.#tail.then(fn, fn);
    this.#tail = p.catch(() => {});
    return p;
  }
}
