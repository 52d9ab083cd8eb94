// N pods at once: wall time of N concurrent RunPodSandbox+CreateContainer+StartContainer.
import type { Rounds } from "../alternate.ts";
import { untilQuiet } from "../cpu.ts";
import { startPod, type StartedPod } from "../pods.ts";
import { percentile } from "../stats.ts";

export const CONCURRENT_METRICS = [["wall time", "ms"], ["per pod", "ms"]] as const;

/**
 * After each round's pods are removed (untimed), the next round, on either runtime, waits at
 * least SETTLE_MIN_MS and then until the machine's CPUs are quiet (under 10% busy over 250 ms),
 * SETTLE_MAX_MS at most: what removals leave behind (berthd's idle collection 1 s after the last
 * removal, shims exiting, the kernel tearing network namespaces down) happens on its own time,
 * not during the other runtime's round. A longer pause changed nothing: with at least 4 s, 5
 * rounds each took berth 806-916 ms and containerd 1755-1981 ms; with 1.5 s, 846-907 and
 * 1717-1952 ms (both quiet within 0.3 s of the minimum).
 */
const SETTLE_MIN_MS = 1500;
const SETTLE_MAX_MS = 10_000;

/**
 * `rounds` bursts per runtime, taking turns: each starts N pods at once and times them until all
 * run; the pods are removed before the next round. The figures are the median wall time, with
 * every round's as its samples, and that median per pod.
 */
export const concurrentRounds: Rounds<{ walls: number[] }> = {
  bench: "concurrent",
  metrics: CONCURRENT_METRICS,
  budgetMs: 180_000,
  async setup(ctx) {
    await ctx.needImages();
    return { walls: [] };
  },
  async round(ctx, st) {
    const n = ctx.opts.pods;
    const t = performance.now();
    const settled = await Promise.allSettled(Array.from({ length: n }, () => startPod(ctx.client, ctx.podSpec("burst"), ctx.env.images.busybox, ctx.created)));
    const wall = performance.now() - t;
    const failure = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
    await ctx.removeCreated("removing the round's pods");
    if (failure) throw failure.reason;
    st.walls.push(wall);
    const settle = await untilQuiet({ minMs: SETTLE_MIN_MS, maxMs: SETTLE_MAX_MS });
    const started = settled.filter((s): s is PromiseFulfilledResult<StartedPod> => s.status === "fulfilled").length;
    ctx.log(`${ctx.target.name}: ${started} pods started concurrently in ${wall.toFixed(0)} ms; removed, then ${settle.quiet ? "quiet" : "still busy"} after ${(settle.ms / 1000).toFixed(1)} s`);
  },
  finish(ctx, st) {
    const wall = percentile(st.walls, 50);
    ctx.record("wall time", "ms", { value: wall, samples: st.walls });
    ctx.record("per pod", "ms", { value: wall / ctx.opts.pods });
  },
  async teardown(ctx) { await ctx.removeCreated("concurrent tear-down"); },
};
