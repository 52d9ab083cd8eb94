// One compiled snapshot of berthd for a whole benchmark run: `hack/build.sh DIR` compiles and
// bundles the sources (as `npm run build` does dist/) into a directory of the run's own under the
// repository's .bench/, and every berth instance runs from it (bin/berthd's BERTHD_DIST).
// Without it, bin/berthd picks dist/ or the sources per start, so an edit elsewhere mid-run (or a
// stale dist/) would measure the sources and Node's type stripping (about 28 MB more RSS) instead
// of what ships.
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { REPO } from "../lib/berthd.ts";

export interface Snapshot { dir: string; remove(): Promise<void> }

export async function buildSnapshot(): Promise<Snapshot> {
  const parent = join(REPO, ".bench");
  await mkdir(parent, { recursive: true });
  const dir = await mkdtemp(join(parent, "berthd-"));
  const remove = () => rm(dir, { recursive: true, force: true });
  try {
    await promisify(execFile)("bash", [join(REPO, "hack", "build.sh"), dir], { cwd: REPO, timeout: 300_000, maxBuffer: 16 << 20 });
  } catch (err) {
    await remove();
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`compiling berthd for the benchmark failed: ${`${e.stdout ?? ""}${e.stderr ?? ""}`.slice(0, 2000) || e.message}`);
  }
  return { dir, remove };
}
