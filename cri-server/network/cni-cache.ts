// Per-sandbox cache of what ADD was given and what it returned, so DEL and
// CHECK after a daemon restart (or a config change) use the same network
// config, runtimeConfig and args. One JSON file per sandbox, written
// crash-safely. An entry is written before ADD starts (result null), so even
// an ADD interrupted by a crash is undone with the config it ran with.

import { mkdir, readFile, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { invalidArgument, internal } from "../../oci-runtime/foundation/errdefs.ts";
import type { NetworkConfigList } from "./cni-config.ts";
import type { CapabilityArgs } from "./cni-invocation.ts";
import { writeFileAtomic } from "../../oci-runtime/foundation/atomic-file.ts";

export interface CacheEntry {
  kind: "berth-cni-cache";
  version: 1;
  sandboxId: string;
  ifName: string;
  netnsPath: string;
  cniArgs: string;
  network: NetworkConfigList;
  capabilityArgs: CapabilityArgs;
  /** The final ADD result (raw JSON), null while ADD has not finished. */
  result: unknown;
}

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,250}$/;

export function checkSandboxId(id: string): void {
  if (!ID_RE.test(id)) throw invalidArgument(`invalid sandbox id "${id}"`);
}

export class CniCache {
  readonly dir: string;
  constructor(dir: string) {
    this.dir = dir;
  }

  pathOf(sandboxId: string): string {
    checkSandboxId(sandboxId);
    return join(this.dir, `${sandboxId}.json`);
  }

  async write(entry: CacheEntry): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(this.pathOf(entry.sandboxId), JSON.stringify(entry), 0o600);
  }

  async read(sandboxId: string): Promise<CacheEntry | undefined> {
    const path = this.pathOf(sandboxId);
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw internal(`cannot read cni cache ${path}: ${(err as Error).message}`, err);
    }
    let v: CacheEntry;
    try {
      v = JSON.parse(text) as CacheEntry;
    } catch (err) {
      throw internal(`corrupt cni cache ${path}: ${(err as Error).message}`, err);
    }
    if (v.kind !== "berth-cni-cache" || v.sandboxId !== sandboxId || !v.network?.plugins) throw internal(`corrupt cni cache ${path}: unexpected content`);
    return v;
  }

  async remove(sandboxId: string): Promise<void> {
    await rm(this.pathOf(sandboxId), { force: true });
  }

  /** Sandbox ids with a cache entry (networks that may still hold resources). */
  async list(): Promise<string[]> {
    try {
      return (await readdir(this.dir)).filter((n) => n.endsWith(".json") && !n.startsWith(".")).map((n) => n.slice(0, -5)).sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw err;
    }
  }
}
