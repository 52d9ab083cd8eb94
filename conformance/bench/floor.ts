// The floor under berthd's RSS, measured beside it: node with berthd's V8 flags and glibc malloc
// tunables (bin/berthd's, or BERTHD_V8_FLAGS and BERTHD_MALLOC_TUNABLES) running
// floor-entry.ts, bundled as hack/build.sh bundles berthd. What berthd uses above it is berth's.
import { execFile, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { REPO } from "../lib/berthd.ts";
import { memUse, type MemUse } from "./host.ts";

/** bin/berthd's V8 flags: BERTHD_V8_FLAGS when set (as bin/berthd reads it), else bin/berthd's default. */
export function berthdV8Flags(env: NodeJS.ProcessEnv = process.env): string[] {
  const set = env["BERTHD_V8_FLAGS"];
  if (set !== undefined) return set.split(/\s+/).filter(Boolean);
  const m = /\$\{BERTHD_V8_FLAGS-([^}]*)\}/.exec(readFileSync(join(REPO, "bin", "berthd"), "utf8"));
  if (!m) throw new Error("bin/berthd: its default V8 flags were not found");
  return m[1]!.split(/\s+/).filter(Boolean);
}

/**
 * bin/berthd's glibc malloc tunables: BERTHD_MALLOC_TUNABLES when set (as bin/berthd reads it),
 * else bin/berthd's default; "" for glibc's defaults.
 */
export function berthdMallocTunables(env: NodeJS.ProcessEnv = process.env): string {
  const set = env["BERTHD_MALLOC_TUNABLES"];
  if (set !== undefined) return set;
  const m = /\$\{BERTHD_MALLOC_TUNABLES-([^}]*)\}/.exec(readFileSync(join(REPO, "bin", "berthd"), "utf8"));
  if (!m) throw new Error("bin/berthd: its default malloc tunables were not found");
  return m[1]!;
}

/** The esbuild flags hack/build.sh bundles berthd with (its `bundle=(...)` line). */
export function bundleFlags(): string[] {
  const m = /^bundle=\(([^)]*)\)$/m.exec(readFileSync(join(REPO, "hack", "build.sh"), "utf8"));
  if (!m) throw new Error("hack/build.sh: its bundle=(...) flags were not found");
  return m[1]!.split(/\s+/).filter(Boolean);
}

export interface Floor extends MemUse {
  flags: string[];
  /** GLIBC_TUNABLES the program ran with (read from its /proc environ), as bin/berthd sets it for berthd */
  tunables: string;
  /** exports of the generated CRI api the program loaded */
  schemas: number;
}

const READY_MS = 30_000;

/** Bundles floor-entry.ts into `dir` as berthd is bundled, runs it, and reads its memory 2 s after it listens (as the bench reads berthd's at idle). */
export async function measureFloor(dir: string, flags = berthdV8Flags(), malloc = berthdMallocTunables()): Promise<Floor> {
  const out = join(dir, "floor.mjs");
  await promisify(execFile)(join(REPO, "node_modules", ".bin", "esbuild"), [
    join(REPO, "conformance", "bench", "floor-entry.ts"), ...bundleFlags(), `--outfile=${out}`,
  ], { cwd: REPO, timeout: 60_000 });
  const inherited = process.env["GLIBC_TUNABLES"];
  const tunables = [malloc, inherited].filter(Boolean).join(":"); // as bin/berthd orders them
  const env = { ...process.env };
  if (tunables) env["GLIBC_TUNABLES"] = tunables; else delete env["GLIBC_TUNABLES"];
  const child = spawn(join(REPO, "node_modules", "node", "bin", "node"), [...flags, out, join(dir, "floor.sock")], { stdio: ["ignore", "pipe", "pipe"], env });
  try {
    const schemas = await new Promise<number>((resolve, reject) => {
      let said = "";
      let stderr = "";
      const timer = setTimeout(() => reject(new Error(`the floor program did not listen within ${READY_MS} ms: ${stderr}`)), READY_MS);
      child.stdout!.setEncoding("utf8").on("data", (d: string) => {
        said += d;
        const m = /^ready (\d+)$/m.exec(said);
        if (m) { clearTimeout(timer); resolve(Number(m[1])); }
      });
      child.stderr!.setEncoding("utf8").on("data", (d: string) => { if (stderr.length < 4096) stderr += d; });
      child.on("exit", (code, signal) => { clearTimeout(timer); reject(new Error(`the floor program exited (${signal ?? code}): ${stderr}`)); });
    });
    await sleep(2000);
    const environ = readFileSync(`/proc/${child.pid}/environ`, "utf8").split("\0");
    const ran = environ.find((e) => e.startsWith("GLIBC_TUNABLES="))?.slice("GLIBC_TUNABLES=".length) ?? "";
    return { ...memUse(child.pid!), flags, tunables: ran, schemas };
  } finally {
    child.kill("SIGKILL");
  }
}
