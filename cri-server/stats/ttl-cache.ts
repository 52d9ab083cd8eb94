// Caches the promise of a value per key for `ttlMs`, so concurrent and
// closely spaced callers share one load. Failed loads are not cached.
import { monotonicMs } from "../../oci-runtime/foundation/clock.ts";

export class TtlCache<V> {
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #entries = new Map<string, { at: number; value: Promise<V> }>();

  constructor(ttlMs: number, now: () => number = monotonicMs) {
    this.#ttlMs = ttlMs;
    this.#now = now;
  }

  get(key: string, load: () => Promise<V>): Promise<V> {
    const t = this.#now();
    const hit = this.#entries.get(key);
    if (hit && t - hit.at < this.#ttlMs) return hit.value;
    const value = load();
    const entry = { at: t, value };
    this.#entries.set(key, entry);
    value.catch(() => {
      if (this.#entries.get(key) === entry) this.#entries.delete(key);
    });
    return value;
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }

  /** Drops entries older than the ttl (call now and then to bound memory). */
  prune(): void {
    const t = this.#now();
    for (const [k, e] of this.#entries) if (t - e.at >= this.#ttlMs) this.#entries.delete(k);
  }

  get size(): number {
    return this.#entries.size;
  }
}
