// A small durable store of records keyed by id, containerd-style: add (fails if it
// exists), get (fails if missing), list, delete, update(fn) under a per-id lock,
// a name index for CRI's reserved names, and unique id-prefix lookup. Each record
// is one JSON file written atomically; load() rebuilds the store after a restart.
import { readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { alreadyExists, invalidArgument, notFound } from "../../oci-runtime/foundation/errdefs.ts";
import { writeJsonAtomic } from "../../oci-runtime/foundation/atomic-file.ts";
import { KeyedMutex } from "../../oci-runtime/foundation/keyed-mutex.ts";

export interface Record0 { id: string; name: string }

export class Store<T extends Record0> {
  readonly kind: string;
  readonly dir: string;
  private readonly items = new Map<string, T>();
  private readonly names = new Map<string, string>(); // name -> id
  /** Whole operations on one record (Stop, Remove...). */
  private readonly locks = new KeyedMutex();
  /** Writes of one record, in order: an update never overwrites a newer one, a delete is never undone. */
  private readonly writes = new KeyedMutex();
  private changes = 0;

  /**
   * Grows with every record added, replaced or deleted (records are replaced, never changed in
   * place): what is built from the records (a whole ListContainers reply) stays good while it
   * stays the same.
   */
  get version(): number { return this.changes; }

  constructor(kind: string, dir: string) {
    this.kind = kind;
    this.dir = dir;
  }

  private file(id: string) { return join(this.dir, `${id}.json`); }

  /** Loads every record from disk; unreadable files are reported to `onBad` and skipped. */
  async load(onBad: (file: string, err: unknown) => void = () => {}): Promise<T[]> {
    let files: string[] = [];
    try { files = await readdir(this.dir); } catch { return []; }
    for (const f of files) {
      if (!f.endsWith(".json") || f.startsWith(".")) {
        if (f.endsWith(".tmp")) await rm(join(this.dir, f), { force: true });
        continue;
      }
      try {
        const rec = JSON.parse(await readFile(join(this.dir, f), "utf8")) as T;
        this.items.set(rec.id, rec);
        this.names.set(rec.name, rec.id);
        this.changes++;
      } catch (err) { onBad(join(this.dir, f), err); }
    }
    return [...this.items.values()];
  }

  /** Reserves a name for an id; throws ALREADY_EXISTS naming the holder. Idempotent for the same id. */
  reserveName(name: string, id: string): void {
    const holder = this.names.get(name);
    if (holder !== undefined && holder !== id) {
      throw alreadyExists(`${this.kind} name ${JSON.stringify(name)} is already reserved by ${this.kind} ${holder}`);
    }
    this.names.set(name, id);
  }
  releaseName(name: string, id: string): void {
    if (this.names.get(name) === id) this.names.delete(name);
  }
  idOfName(name: string): string | undefined { return this.names.get(name); }

  async add(rec: T): Promise<T> {
    if (this.items.has(rec.id)) throw alreadyExists(`${this.kind} ${rec.id} already exists`);
    this.reserveName(rec.name, rec.id);
    this.items.set(rec.id, rec);
    this.changes++;
    await writeJsonAtomic(this.file(rec.id), rec);
    return rec;
  }

  tryGet(id: string): T | undefined { return this.items.get(id); }

  /** Looks up by full id or a unique id prefix. */
  resolve(idOrPrefix: string): T | undefined {
    if (!idOrPrefix) return undefined;
    const exact = this.items.get(idOrPrefix);
    if (exact) return exact;
    let found: T | undefined;
    for (const [id, rec] of this.items) {
      if (id.startsWith(idOrPrefix)) {
        if (found) throw invalidArgument(`${this.kind} id prefix ${JSON.stringify(idOrPrefix)} is ambiguous`);
        found = rec;
      }
    }
    return found;
  }

  get(idOrPrefix: string, field = `${this.kind}_id`): T {
    if (!idOrPrefix) throw invalidArgument(`${field} must not be empty`);
    const rec = this.resolve(idOrPrefix);
    if (!rec) throw notFound(`${this.kind} ${JSON.stringify(idOrPrefix)} not found`);
    return rec;
  }

  list(): T[] { return [...this.items.values()]; }

  /** Serialises work per id. */
  withLock<R>(id: string, fn: () => Promise<R>): Promise<R> {
    return this.locks.run(id, fn);
  }

  /** Applies `fn` to a copy of the current record and persists it (NOT_FOUND once the record is deleted). */
  update(id: string, fn: (rec: T) => void): Promise<T> {
    return this.writes.run(id, async () => {
      const cur = this.items.get(id);
      if (!cur) throw notFound(`${this.kind} ${JSON.stringify(id)} not found`);
      const next = structuredClone(cur);
      fn(next);
      await writeJsonAtomic(this.file(id), next);
      this.items.set(id, next);
      this.changes++;
      return next;
    });
  }

  delete(id: string): Promise<void> {
    return this.writes.run(id, async () => {
      const rec = this.items.get(id);
      await rm(this.file(id), { force: true });
      if (rec) {
        this.items.delete(id);
        this.changes++;
        this.releaseName(rec.name, id);
      }
    });
  }
}
