// Shares one in-flight promise per key. (The counting semaphore is semaphore.ts, mutexes keyed-mutex.ts.)

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
