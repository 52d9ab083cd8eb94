// Keeps the result of a create (RunPodSandbox, CreateContainer) that finished after
// kubelet gave up waiting, so kubelet's retry of the same request gets that object
// instead of "name is reserved" (the idea of CRI-O's resourcestore).
//
// A create in progress is registered under its reserved name with a fingerprint of
// the request; a retry with the same name and fingerprint waits for that create and
// returns its id. A retry with a different request gets ALREADY_EXISTS as usual.

export interface PendingCreate {
  fingerprint: string;
  result: Promise<string>;
  /** True once the original caller got its answer (it may have given up before). */
  delivered: boolean;
}

export class CreateCache {
  private readonly pending = new Map<string, PendingCreate>();
  private readonly ttlMs: number;
  constructor(ttlMs: number) { this.ttlMs = ttlMs; }

  get(name: string): PendingCreate | undefined { return this.pending.get(name); }

  /** Registers a create; the entry stays until `ttlMs` after it settles or until `forget`. */
  track(name: string, fingerprint: string, result: Promise<string>): PendingCreate {
    const entry: PendingCreate = { fingerprint, result, delivered: false };
    this.pending.set(name, entry);
    const drop = () => {
      const t = setTimeout(() => { if (this.pending.get(name) === entry) this.pending.delete(name); }, this.ttlMs);
      t.unref();
    };
    result.then(drop, () => { if (this.pending.get(name) === entry) this.pending.delete(name); });
    return entry;
  }

  forget(name: string): void { this.pending.delete(name); }
}
