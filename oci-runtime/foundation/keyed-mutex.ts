// Serialises async work per key: a run waits for every earlier run of the same key
// (whether it resolved or rejected); different keys never wait for each other.
// Entries are dropped once a key's queue drains, so the map stays bounded.
// Mutex is the same with one key.

export class KeyedMutex {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<R>(key: string, fn: () => Promise<R>): Promise<R> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => {});
    this.tails.set(key, tail);
    void tail.then(() => { if (this.tails.get(key) === tail) this.tails.delete(key); });
    return run;
  }

  /** Keys with work queued or running (for tests). */
  get size(): number { return this.tails.size; }
}

/** Serialises async sections: a KeyedMutex with a single key. */
export class Mutex {
  readonly #m = new KeyedMutex();
  run<R>(fn: () => Promise<R>): Promise<R> { return this.#m.run("", fn); }
}
