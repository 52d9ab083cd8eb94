// Leases keep snapshots alive while a container rootfs uses them: <root>/<key>.json.
import { rm } from "node:fs/promises";
import path from "node:path";
import { writeJsonAtomic } from "../../oci-runtime/foundation/atomic-file.ts";
import { loadRecords } from "./records.ts";

export interface Lease { key: string; imageId: string; chainIds: string[] }

export class LeaseStore {
  readonly dir: string;
  #leases = new Map<string, Lease>();
  constructor(dir: string) { this.dir = dir; }

  async init() {
    for (const l of await loadRecords<Lease>(this.dir, (n) => n.endsWith(".json"))) this.#leases.set(l.key, l);
  }

  get(key: string) { return this.#leases.get(key); }
  list() { return [...this.#leases.values()]; }
  async put(l: Lease) {
    await writeJsonAtomic(path.join(this.dir, `${l.key}.json`), l);
    this.#leases.set(l.key, l);
  }
  async delete(key: string) {
    this.#leases.delete(key);
    await rm(path.join(this.dir, `${key}.json`), { force: true });
  }
}
