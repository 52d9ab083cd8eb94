// ExecSync latency: `echo hi` in a running busybox container, after one untimed warm-up.
import { roundFigures, type Rounds } from "../alternate.ts";
import type { BenchContext } from "../context.ts";
import { CALL_TIMEOUT_MS, startPod } from "../pods.ts";
import { cpuMsOf } from "../cpu.ts";

export const EXEC_RUNS = 20;
export const EXEC_METRICS = [["ExecSync p50", "ms"], ["ExecSync p95", "ms"], ["daemon CPU per ExecSync", "ms"]] as const;

/** A pod from the pool with a started container, or a new one. */
export async function runningContainer(ctx: BenchContext): Promise<string> {
  const pod = ctx.pool.find((p) => p.started);
  if (pod) return pod.containerIds[0]!;
  await ctx.needImages();
  const started = await startPod(ctx.client, ctx.podSpec("exec"), ctx.env.images.busybox, ctx.created);
  ctx.pool.push({ ...started, started: true });
  return started.containerIds[0]!;
}

interface ExecState { containerId: string; rounds: number[][]; cpuMs: number }

/**
 * `rounds` rounds of EXEC_RUNS calls each, taking turns between the runtimes, after one untimed
 * warm-up call: p50 (the median of the rounds' p50s, with their spread), p95 of every call, and
 * the daemon's own CPU per call over the timed rounds.
 */
export const execRounds: Rounds<ExecState> = {
  bench: "exec",
  metrics: EXEC_METRICS,
  budgetMs: 60_000,
  async setup(ctx) {
    const containerId = await runningContainer(ctx);
    await execOnce(ctx, containerId);
    return { containerId, rounds: [], cpuMs: 0 };
  },
  async round(ctx, st) {
    const samples: number[] = [];
    const cpu0 = cpuMsOf(ctx.instance.daemonPids());
    for (let i = 0; i < EXEC_RUNS; i++) {
      ctx.checkTime();
      const t = performance.now();
      await execOnce(ctx, st.containerId);
      samples.push(performance.now() - t);
    }
    st.cpuMs += cpuMsOf(ctx.instance.daemonPids()) - cpu0;
    st.rounds.push(samples);
  },
  finish(ctx, st) {
    const f = roundFigures(st.rounds);
    ctx.record("ExecSync p50", "ms", f.p50);
    ctx.record("ExecSync p95", "ms", { value: f.p95 });
    ctx.record("daemon CPU per ExecSync", "ms", { value: st.cpuMs / f.calls });
  },
  async teardown() { /* the container is the pool's: the memory benchmark uses it next */ },
};

async function execOnce(ctx: BenchContext, containerId: string): Promise<void> {
  const r = await ctx.client.runtime.execSync({ containerId, cmd: ["echo", "hi"], timeout: 10n }, { timeoutMs: CALL_TIMEOUT_MS });
  const out = Buffer.from(r.stdout).toString();
  if (r.exitCode !== 0 || out !== "hi\n") throw new Error(`exec "echo hi" in ${containerId}: exit ${r.exitCode}, stdout ${JSON.stringify(out)}, stderr ${JSON.stringify(Buffer.from(r.stderr).toString())}`);
}
