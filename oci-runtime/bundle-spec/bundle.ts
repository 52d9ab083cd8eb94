// Writes an OCI bundle's config.json crash-safely.
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../foundation/atomic-file.ts";
import type { Spec } from "./types.ts";

/** Creates `bundle` (mode 0700) and writes `bundle/config.json`. */
export async function writeBundle(bundle: string, spec: Spec): Promise<void> {
  await mkdir(bundle, { recursive: true, mode: 0o700 });
  await writeFileAtomic(join(bundle, "config.json"), JSON.stringify(spec, null, 2), 0o600);
}
