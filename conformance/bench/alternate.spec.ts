import { test } from "node:test";
import assert from "node:assert/strict";
import { inRounds, roundFigures, type Rounds } from "./alternate.ts";
import { parseBenchArgs } from "./args.ts";
import { BenchContext } from "./context.ts";
import { Results } from "./report.ts";
import type { BenchEnv, Instance, Target } from "./target.ts";

/** Contexts over stand-in runtimes: inRounds only names them and records through them. */
function contexts(results: Results, names: ("berth" | "containerd")[]): BenchContext[] {
  const opts = parseBenchArgs([]);
  return names.map((name) => new BenchContext({ name } as Target, { logTail: () => "" } as unknown as Instance, {} as BenchEnv, opts, results, () => {}));
}

test("rounds take turns between the runtimes, between one set-up and one tear-down each", async () => {
  const results = new Results();
  const ctxs = contexts(results, ["berth", "containerd"]);
  const calls: string[] = [];
  const spec: Rounds<{ n: number[] }> = {
    bench: "exec", metrics: [["x", "ms"]], budgetMs: 10_000,
    async setup(ctx) { calls.push(`setup ${ctx.target.name}`); return { n: [] }; },
    async round(ctx, st, i) { calls.push(`round ${i} ${ctx.target.name}`); st.n.push(i); },
    finish(ctx, st) { calls.push(`finish ${ctx.target.name}`); ctx.record("x", "ms", { value: st.n.length }); },
    async teardown(ctx, st) { calls.push(`teardown ${ctx.target.name} ${st ? "with state" : "without"}`); },
  };
  await inRounds(ctxs, 3, spec);
  assert.deepEqual(calls, [
    "setup berth", "setup containerd",
    "round 0 berth", "round 0 containerd", "round 1 berth", "round 1 containerd", "round 2 berth", "round 2 containerd",
    "finish berth", "finish containerd",
    "teardown berth with state", "teardown containerd with state",
  ]);
  assert.deepEqual(results.rows[0]!.cells, { berth: { value: 3 }, containerd: { value: 3 } });
});

test("a runtime whose round fails gets error cells and sits out; the other goes on; both are torn down", async () => {
  const results = new Results();
  const ctxs = contexts(results, ["berth", "containerd"]);
  const rounds: string[] = [];
  const torn: string[] = [];
  await inRounds(ctxs, 3, {
    bench: "list", metrics: [["p50", "ms"], ["p95", "ms"]], budgetMs: 10_000,
    async setup() { return {}; },
    async round(ctx, _st, i) {
      rounds.push(`${ctx.target.name} ${i}`);
      if (ctx.target.name === "containerd" && i === 1) throw new Error("the daemon went away");
    },
    finish(ctx) { ctx.record("p50", "ms", { value: 1 }); ctx.record("p95", "ms", { value: 2 }); },
    async teardown(ctx) { torn.push(ctx.target.name); throw new Error("tear-down problems are logged, not thrown"); },
  });
  assert.deepEqual(rounds, ["berth 0", "containerd 0", "berth 1", "containerd 1", "berth 2"]);
  assert.deepEqual(torn, ["berth", "containerd"]);
  const cell = (m: string, r: "berth" | "containerd") => results.rows.find((row) => row.metric === m)!.cells[r];
  assert.deepEqual(cell("p50", "berth"), { value: 1 });
  assert.deepEqual(cell("p50", "containerd"), { error: "the daemon went away" });
  assert.deepEqual(cell("p95", "containerd"), { error: "the daemon went away" });
});

test("a failed set-up skips that runtime's rounds, and its tear-down gets no state", async () => {
  const results = new Results();
  const ctxs = contexts(results, ["berth", "containerd"]);
  const seen: string[] = [];
  await inRounds(ctxs, 2, {
    bench: "concurrent", metrics: [["wall time", "ms"]], budgetMs: 10_000,
    async setup(ctx) { if (ctx.target.name === "berth") throw Object.assign(new Error("no"), { code: 12, details: "not here" }); return 1; },
    async round(ctx) { seen.push(`round ${ctx.target.name}`); },
    finish(ctx) { ctx.record("wall time", "ms", { value: 5 }); },
    async teardown(ctx, st) { seen.push(`teardown ${ctx.target.name} ${String(st)}`); },
  });
  assert.deepEqual(seen, ["round containerd", "round containerd", "teardown berth undefined", "teardown containerd 1"]);
  assert.deepEqual(results.rows[0]!.cells.berth, { na: "UNIMPLEMENTED: not here" });
});

test("round figures: the median of the rounds' p50s with their spread, and the p95 of every sample", () => {
  const f = roundFigures([[1, 2, 3], [10, 20, 30], [4, 5, 6], [], [7, 8, 9]]);
  assert.deepEqual(f.p50, { value: 5, samples: [2, 20, 5, 8] });
  assert.equal(f.calls, 12);
  assert.equal(f.p95, 30);
  const one = roundFigures([[3, 1, 2]]);
  assert.deepEqual(one.p50, { value: 2, samples: [2] });
});
