// Leases keep snapshots alive while a container rootfs uses them: <root>/<key>.json.
import { mkdir, readdir, rm } from "node:fs/promises";
import path from "node:path";
import { writeJsonAtomic } from "../../cri-server/stores/atomic-file.ts";
import { readRecord } from "./read-record.ts";

export interface Lease { key: string; imageId: string; chainIds: string[] }

export class LeaseStore {
  readonly dir: string;
  #leases = new Map<string, Lease>();
  constructor(dir: string) { this.dir = dir; }

  async init() {
    await mkdir(this.dir, { recursive: true });
    for (const n of await readdir(this.dir)) {
      const file = path.join(this.dir, n);
      if (n.endsWith(".tmp")) { await rm(file, { force: true }); continue; }
      if (!n.endsWith(".json")) continue;
      const l = await readRecord<Lease>(file);
      if (l) this.#leases.set(l.key, l);
    }
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
