// Benchmarks timed in rounds that take turns between the runtimes: round 1 on berth, round 1 on
// containerd, round 2 on berth, ... so that a change in the machine's state during the run (load,
// frequency, page cache, a daemon's background work) falls on both alike, and the rounds' spread
// shows how steady a figure is.
import type { BenchmarkId } from "./args.ts";
import type { BenchContext } from "./context.ts";
import { percentile } from "./stats.ts";

export interface Rounds<S> {
  bench: BenchmarkId;
  metrics: readonly (readonly [string, string])[];
  /** Time budget of each part (set-up, one round, the figures, tear-down) on one runtime. */
  budgetMs: number;
  /** Untimed preparation on one runtime; what it returns goes to every round. */
  setup(ctx: BenchContext): Promise<S>;
  /** One timed round on one runtime. */
  round(ctx: BenchContext, state: S, index: number): Promise<void>;
  /** Records the figures once every round ran on this runtime. */
  finish(ctx: BenchContext, state: S): void;
  /** Removes what set-up and the rounds made (also after a failure); best effort. */
  teardown(ctx: BenchContext, state: S | undefined): Promise<void>;
}

/**
 * Runs `spec` on every context: set-up on each, then `rounds` rounds taking turns, then the
 * figures and the tear-down. A runtime whose part fails gets error cells (BenchContext.run) and
 * sits out the rest; the others go on.
 */
export async function inRounds<S>(ctxs: readonly BenchContext[], rounds: number, spec: Rounds<S>): Promise<void> {
  const states = new Map<BenchContext, S>();
  const part = (ctx: BenchContext, fn: () => Promise<void>, name: string) => ctx.run(spec.bench, spec.metrics, spec.budgetMs, fn, name);
  try {
    for (const ctx of ctxs) await part(ctx, async () => { states.set(ctx, await spec.setup(ctx)); }, "set-up");
    for (let r = 0; r < rounds; r++) {
      for (const ctx of ctxs) {
        if (!states.has(ctx)) continue;
        const state = states.get(ctx) as S;
        if (!await part(ctx, () => spec.round(ctx, state, r), `round ${r + 1} of ${rounds}`)) states.delete(ctx);
      }
    }
    for (const [ctx, state] of states) await part(ctx, async () => spec.finish(ctx, state), "figures");
  } finally {
    for (const ctx of ctxs) {
      await spec.teardown(ctx, states.get(ctx)).catch((err: unknown) => ctx.log(`${ctx.target.name}: ${spec.bench} tear-down: ${(err as Error).message}`));
    }
  }
}

/**
 * A latency figure from rounds of samples: the median of the rounds' p50s, with those p50s as the
 * cell's samples (the report prints their [min..max], the spread between rounds); and the p95 of
 * all samples together.
 */
export function roundFigures(rounds: readonly (readonly number[])[]): { p50: { value: number; samples: number[] }; p95: number; calls: number } {
  const p50s = rounds.filter((r) => r.length).map((r) => percentile(r, 50));
  const all = rounds.flat();
  return { p50: { value: percentile(p50s, 50), samples: p50s }, p95: percentile(all, 95), calls: all.length };
}
