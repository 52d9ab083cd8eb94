// Command line of `npm run bench`.
import { parseArgs } from "node:util";

export const BENCHMARKS = ["pod-start", "exec", "memory", "concurrent", "list", "scale", "pull"] as const;
export type BenchmarkId = (typeof BENCHMARKS)[number];
export const RUNTIMES = ["berth", "containerd"] as const;
export type RuntimeName = (typeof RUNTIMES)[number];

export interface BenchOptions {
  only: BenchmarkId[];
  pods: number;
  runtimes: RuntimeName[];
  out: string;
  /** Rounds of exec, concurrent and list, taking turns between the runtimes. */
  rounds: number;
  pullReps: number;
  listContainers: number;
  /** Pod counts the scale benchmark steps through, ascending. */
  scale: number[];
  /** Up to this many pods the scale benchmark starts a container in each; beyond, sandbox-only pods. */
  scaleFull: number;
  help: boolean;
}

export const usage = `usage: npm run bench -- [options]
  --only LIST        comma-separated benchmarks (default all): ${BENCHMARKS.join(",")}
  --pods N           pods for pod-start, concurrent and memory (default 20, max 200)
  --runtime R        berth | containerd | both (default both)
  --out DIR          directory for the JSON results (default .bench)
  --rounds N         rounds of exec, concurrent and list, alternating (default 5, max 20)
  --pull-reps N      cold pulls per runtime, alternating (default 5, max 10)
  --containers N     containers for the list benchmark (default 100, max 500)
  --scale LIST       pod counts for the scale benchmark (default 20,100,250; ascending, max 250)
  --scale-full N     scale pods get a container up to N pods, sandbox-only pods beyond (default 100)
`;

export class UsageError extends Error {
  constructor(message: string) { super(message); this.name = "UsageError"; }
}

function intIn(name: string, raw: string | undefined, def: number, min: number, max: number): number {
  if (raw === undefined) return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got "${raw}"`);
  return n;
}

/** The most pods the scale benchmark runs: one /24 per runtime (host-local hands out 253 addresses). */
export const MAX_SCALE_PODS = 250;

function parseScale(raw: string | undefined): number[] {
  if (raw === undefined) return [20, 100, 250];
  const parts = raw.split(",").map((s) => s.trim());
  if (parts.length > 8) throw new UsageError(`--scale lists ${parts.length} sizes, at most 8`);
  const sizes = parts.map((p) => intIn("scale", p, 0, 1, MAX_SCALE_PODS));
  for (let i = 1; i < sizes.length; i++) if (sizes[i]! <= sizes[i - 1]!) throw new UsageError(`--scale sizes must ascend, got "${raw}"`);
  return sizes;
}

export function parseBenchArgs(argv: string[]): BenchOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        only: { type: "string" }, pods: { type: "string" }, runtime: { type: "string" }, out: { type: "string" },
        rounds: { type: "string" }, "pull-reps": { type: "string" }, containers: { type: "string" }, scale: { type: "string" }, "scale-full": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const only = values.only === undefined ? [...BENCHMARKS] : values.only.split(",").map((s) => s.trim()).filter(Boolean);
  for (const b of only) if (!(BENCHMARKS as readonly string[]).includes(b)) throw new UsageError(`--only: unknown benchmark "${b}" (known: ${BENCHMARKS.join(", ")})`);
  if (only.length === 0) throw new UsageError("--only names no benchmark");
  const rt = values.runtime ?? "both";
  if (rt !== "both" && !(RUNTIMES as readonly string[]).includes(rt)) throw new UsageError(`--runtime must be berth, containerd or both, got "${rt}"`);
  return {
    only: BENCHMARKS.filter((b) => only.includes(b)),
    pods: intIn("pods", values.pods, 20, 1, 200),
    runtimes: rt === "both" ? [...RUNTIMES] : [rt as RuntimeName],
    out: values.out ?? ".bench",
    rounds: intIn("rounds", values.rounds, 5, 1, 20),
    pullReps: intIn("pull-reps", values["pull-reps"], 5, 1, 10),
    listContainers: intIn("containers", values.containers, 100, 1, 500),
    scale: parseScale(values.scale),
    scaleFull: intIn("scale-full", values["scale-full"], 100, 0, MAX_SCALE_PODS),
    help: values.help ?? false,
  };
}
