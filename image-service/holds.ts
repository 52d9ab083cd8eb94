// What pulls hold against the GC: the blobs and chain ids a pull is about to look for or write,
// in berthd itself or in the pull process. The GC takes a key only when no pull holds it, and a
// pull that holds a key the GC is removing right now waits until it is gone before it looks: a
// pull never finds a blob or layer that the GC then removes under it, and the GC never waits for
// a pull to end.
export class Holds {
  #count = new Map<string, number>();
  /** Keys the GC is removing now, with the removal's end. */
  #removing = new Map<string, Promise<void>>();

  /**
   * Holds `keys` at once (counted: each hold needs its release). Resolves once none of them is
   * being removed any more; only then may the pull look for them or write them.
   */
  hold(keys: readonly string[]): Promise<void> {
    for (const k of keys) this.#count.set(k, (this.#count.get(k) ?? 0) + 1);
    const waits = keys.flatMap((k) => this.#removing.get(k) ?? []);
    return waits.length ? Promise.all(waits).then(() => {}) : Promise.resolve();
  }

  release(keys: readonly string[]): void {
    for (const k of keys) {
      const n = (this.#count.get(k) ?? 1) - 1;
      if (n <= 0) this.#count.delete(k); else this.#count.set(k, n);
    }
  }

  held(key: string): boolean { return this.#count.has(key); }
  get size(): number { return this.#count.size; }
  keys(): IterableIterator<string> { return this.#count.keys(); }

  /**
   * Runs `remove` for `key` unless a pull holds it (false then). Checked and marked in one step:
   * a hold taken from here on waits for the removal to end.
   */
  async removeUnheld(key: string, remove: () => Promise<void>): Promise<boolean> {
    if (this.#count.has(key) || this.#removing.has(key)) return false;
    const done = remove();
    const settled = done.then(() => {}, () => {});
    this.#removing.set(key, settled);
    try {
      await done;
      return true;
    } finally {
      this.#removing.delete(key);
    }
  }
}
