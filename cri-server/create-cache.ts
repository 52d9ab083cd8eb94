// Keeps the result of a create (RunPodSandbox, CreateContainer) that finished after
// kubelet gave up waiting, so kubelet's retry of the same request gets that object
// instead of "name is reserved" (the idea of CRI-O's resourcestore).
//
// A create in progress is registered under its reserved name with a fingerprint of
// the request; a retry with the same name and fingerprint waits for that create and
// returns its id. A retry with a different request gets ALREADY_EXISTS as usual.
import { sha256HexText } from "../oci-runtime/foundation/sha256.ts";
import { alreadyExists } from "../oci-runtime/foundation/errdefs.ts";

export interface PendingCreate {
  fingerprint: string;
  result: Promise<string>;
}

export class CreateCache {
  private readonly pending = new Map<string, PendingCreate>();
  /** The expiry timer of each settled entry: `forget` (the object was removed) clears it, so a removed pod's entry is not held until the ttl. */
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly ttlMs: number;
  constructor(ttlMs: number) { this.ttlMs = ttlMs; }

  get(name: string): PendingCreate | undefined { return this.pending.get(name); }

  /** Entries held (in progress or settled within the ttl), and expiry timers pending. */
  get size(): { entries: number; timers: number } { return { entries: this.pending.size, timers: this.timers.size }; }

  /** Registers a create; the entry stays until `ttlMs` after it settles or until `forget`. */
  track(name: string, fingerprint: string, result: Promise<string>): PendingCreate {
    this.forget(name);
    const entry: PendingCreate = { fingerprint, result };
    this.pending.set(name, entry);
    const drop = () => {
      if (this.pending.get(name) !== entry) return; // forgotten (or replaced) before it settled
      const t = setTimeout(() => {
        if (this.pending.get(name) === entry) this.forget(name);
      }, this.ttlMs);
      t.unref();
      this.timers.set(name, t);
    };
    result.then(drop, () => { if (this.pending.get(name) === entry) this.forget(name); });
    return entry;
  }

  forget(name: string): void {
    this.pending.delete(name);
    const t = this.timers.get(name);
    if (t) {
      clearTimeout(t);
      this.timers.delete(name);
    }
  }
}

/** What an idempotent create needs of its store: the name reservations. */
export interface NameReservations {
  idOfName(name: string): string | undefined;
  reserveName(name: string, id: string): void;
  releaseName(name: string, id: string): void;
}

export interface IdempotentCreate<P> {
  /** "pod sandbox" or "container", for messages. */
  kind: string;
  name: string;
  fingerprint: string;
  names: NameReservations;
  log: { info(msg: string, fields?: Record<string, unknown>): void };
  newId(): string;
  /** Checks that run once the name is known to be free (may throw; nothing is reserved yet). */
  check(): Promise<P> | P;
  /** The create itself, with the name reserved for `id`; the reservation is released when it fails. */
  run(id: string, checked: P): Promise<string>;
}

/**
 * The opening every create shares (RunPodSandbox, CreateContainer): a retry of the same request
 * joins the create in progress (or finished after its caller gave up); another request for a
 * reserved name is ALREADY_EXISTS; otherwise the name is reserved for a new id while `run` runs.
 */
export async function idempotentCreate<P>(cache: CreateCache, o: IdempotentCreate<P>): Promise<string> {
  const joinOrRefuse = (): Promise<string> | undefined => {
    const pending = cache.get(o.name);
    if (pending && pending.fingerprint === o.fingerprint) {
      o.log.info("retry joins an earlier create", { name: o.name });
      return pending.result;
    }
    const existing = o.names.idOfName(o.name);
    if (existing) throw alreadyExists(`${o.kind} name ${JSON.stringify(o.name)} is already reserved by ${o.kind === "pod sandbox" ? "sandbox" : o.kind} ${existing}`);
    return undefined;
  };
  const early = joinOrRefuse();
  if (early) return early;
  const checked = await o.check();
  // A twin request may have reserved the name while the checks ran: join it (or refuse) now.
  const late = joinOrRefuse();
  if (late) return late;
  const id = o.newId();
  o.names.reserveName(o.name, id);
  const result = o.run(id, checked).catch((err) => {
    o.names.releaseName(o.name, id);
    throw err;
  });
  cache.track(o.name, o.fingerprint, result);
  return result;
}

/** A hash of a request that ignores map order (kubelet's Go marshaller orders map entries at random). */
export function requestFingerprint(json: unknown): string {
  const canon = (v: unknown): unknown => Array.isArray(v) ? v.map(canon)
    : v && typeof v === "object" ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, canon((v as Record<string, unknown>)[k])])) : v;
  // JavaScript's SHA-256 for the usual request of a few KB (no node:crypto on the pod path).
  return sha256HexText(JSON.stringify(canon(json)));
}

/** One step of a teardown: what it releases and how. */
export type TeardownStep = readonly [what: string, release: () => Promise<unknown> | unknown];

/**
 * Runs a teardown's steps in order. "strict" stops at the first failure and throws it (the record
 * stays, so the caller's retry finishes the job); "best-effort" runs every step, logging failures
 * (a rollback or the cleanup of a crashed create must release all it can).
 */
export async function runTeardown(steps: readonly TeardownStep[], mode: "strict" | "best-effort", log: { error(msg: string, fields?: Record<string, unknown>): void }): Promise<void> {
  for (const [what, release] of steps) {
    if (mode === "strict") { await release(); continue; }
    try { await release(); } catch (err) { log.error("teardown step failed", { step: what, error: err }); }
  }
}
