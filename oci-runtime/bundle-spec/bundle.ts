// Writes an OCI bundle's config.json crash-safely.
import { uniqueSuffix } from "../foundation/unique.ts";
import { mkdir, open, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { fsyncDir, writeFileAtomic } from "../foundation/atomic-file.ts";
import type { Spec } from "./types.ts";

/**
 * Whether a bundle's config.json text names poststart hooks, which only the runtime's own start
 * runs. Text that is not a spec counts as having them (the runtime's start then decides).
 */
export function specHasPoststartHooks(configJson: string): boolean {
  try {
    const spec = JSON.parse(configJson) as Spec;
    return (spec.hooks?.["poststart"]?.length ?? 0) > 0;
  } catch {
    return true;
  }
}

/** Creates `bundle` (mode 0700) and writes `bundle/config.json`. */
export async function writeBundle(bundle: string, spec: Spec): Promise<void> {
  await mkdir(bundle, { recursive: true, mode: 0o700 });
  await writeFileAtomic(join(bundle, "config.json"), JSON.stringify(spec, null, 2), 0o600);
}

/**
 * Writes config.json as writeBundle does (temp file, rename: a reader sees the old content or the
 * new) but answers once it is in place, its durability (fsync of the file, then of the bundle
 * directory) still under way in `synced`: for a create that runs the runtime meanwhile and records
 * the container created only once `synced` settled (a crash before that leaves the record
 * "creating", and the start-up tears the bundle down).
 */
export async function writeBundleSyncLater(bundle: string, spec: Spec): Promise<{ synced: Promise<void> }> {
  await mkdir(bundle, { recursive: true, mode: 0o700 });
  const path = join(bundle, "config.json");
  const tmp = join(bundle, `.config.json.${uniqueSuffix()}.tmp`);
  const fh = await open(tmp, "wx", 0o600);
  try {
    await fh.writeFile(JSON.stringify(spec, null, 2));
    await rename(tmp, path);
  } catch (err) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    throw err;
  }
  const synced = (async () => {
    try { await fh.sync(); } finally { await fh.close(); }
    await fsyncDir(bundle);
  })();
  synced.catch(() => {}); // the caller awaits it later; a failure meanwhile is not unhandled
  return { synced };
}
