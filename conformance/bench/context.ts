// Per-runtime benchmark context: the instance under test, the pods kept running between
// benchmarks, lazy image preparation, deadlines, and turning errors into report cells.
import type { BenchmarkId, BenchOptions } from "./args.ts";
import { interrupt, InterruptedError } from "./interrupt.ts";
import type { Cell, Results } from "./report.ts";
import { Created, removeAllPods, type StartedPod } from "./pods.ts";
import type { BenchEnv, Instance, Target } from "./target.ts";

const UNIMPLEMENTED = 12;

/** n/a for UNIMPLEMENTED answers, an error cell for anything else. */
export function cellOf(err: unknown): Cell {
  const e = err as { code?: number; details?: string; message?: string };
  if (e?.code === UNIMPLEMENTED) return { na: `UNIMPLEMENTED: ${e.details ?? e.message ?? ""}` };
  return { error: e?.details || e?.message || String(err) };
}

export function describe(cell: Cell): string {
  return "na" in cell ? `n/a (${cell.na})` : "error" in cell ? `error: ${cell.error}` : String(cell.value);
}

export class DeadlineError extends Error {
  constructor(bench: string, ms: number) { super(`${bench}: gave up after ${Math.round(ms / 1000)} s`); this.name = "DeadlineError"; }
}

export interface RunningPod extends StartedPod { started: boolean }

export class BenchContext {
  /** Pods (with a started container when `started`) kept for exec and memory. */
  readonly pool: RunningPod[] = [];
  /** Every pod and container id this context created and has not removed. */
  readonly created = new Created();
  private seq = 0;
  private prepared: Promise<Cell | undefined> | undefined;
  private deadline = Number.POSITIVE_INFINITY;
  private deadlineMs = 0;
  private bench: BenchmarkId = "pod-start";

  readonly target: Target;
  readonly instance: Instance;
  readonly env: BenchEnv;
  readonly opts: BenchOptions;
  readonly results: Results;
  readonly log: (msg: string) => void;

  constructor(target: Target, instance: Instance, env: BenchEnv, opts: BenchOptions, results: Results, log: (msg: string) => void) {
    this.target = target;
    this.instance = instance;
    this.env = env;
    this.opts = opts;
    this.results = results;
    this.log = log;
  }

  get client() { return this.instance.client; }

  /** A pod name unique within this instance. */
  podName(prefix: string): string { return `${prefix}-${++this.seq}`; }

  podSpec(prefix: string) {
    return { name: this.podName(prefix), cgroupParent: this.target.cgroupParent, logDir: this.target.logDir };
  }

  /** Pulls the target's images once (untimed); a problem is returned, not thrown. */
  prepare(): Promise<Cell | undefined> {
    this.prepared ??= (async () => {
      try {
        for (const image of this.target.prepull) await this.client.image.pullImage({ image: { image } }, { timeoutMs: 120_000 });
        return undefined;
      } catch (err) {
        return cellOf(err);
      }
    })();
    return this.prepared;
  }

  /** Like prepare(), but throws the problem (for benchmarks that need the images). */
  async needImages(): Promise<void> {
    const problem = await this.prepare();
    if (problem) throw Object.assign(new Error(describe(problem)), { cell: problem });
  }

  record(metric: string, unit: string, cell: Cell): void {
    this.results.set(this.bench, metric, unit, this.target.name, cell);
  }

  /**
   * Stops and removes every pod and container the runtime lists or this context created
   * (removeAllPods); what went wrong, but for UNIMPLEMENTED answers, is logged under `what`.
   */
  async removeCreated(what: string): Promise<void> {
    const problems = (await removeAllPods(this.client, this.created)).filter((p) => !p.includes("UNIMPLEMENTED"));
    if (problems.length) this.log(`${this.target.name}: ${what}: ${problems.join("; ")}`);
  }

  /** Throws once the running benchmark's time budget is spent; call it in every loop. */
  checkTime(): void {
    if (interrupt.requested) throw new InterruptedError();
    if (Date.now() > this.deadline) throw new DeadlineError(this.bench, this.deadlineMs);
  }

  /**
   * Runs one benchmark (or one `part` of it, for the log) with a time budget; failures fill its
   * metrics with n/a or error cells. Returns whether `fn` finished.
   */
  async run(bench: BenchmarkId, metrics: readonly (readonly [string, string])[], budgetMs: number, fn: () => Promise<void>, part = ""): Promise<boolean> {
    if (interrupt.requested) return false;
    this.bench = bench;
    this.deadlineMs = budgetMs;
    this.deadline = Date.now() + budgetMs;
    const started = performance.now();
    const what = part ? `${bench} ${part}` : bench;
    this.log(`${this.target.name}: ${what} ...`);
    try {
      await fn();
      return true;
    } catch (err) {
      const cell = (err as { cell?: Cell }).cell ?? cellOf(err);
      this.log(`${this.target.name}: ${bench}: ${describe(cell)}`);
      if ("error" in cell && !(err instanceof InterruptedError)) this.log(`${this.target.name}: daemon log tail:\n${this.instance.logTail()}`);
      this.results.fill(bench, metrics, this.target.name, cell);
      return false;
    } finally {
      this.deadline = Number.POSITIVE_INFINITY;
      this.log(`${this.target.name}: ${what} done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    }
  }
}
