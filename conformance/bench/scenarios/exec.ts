// ExecSync latency: `echo hi` in a running busybox container, after one untimed warm-up.
import type { BenchContext } from "../context.ts";
import { CALL_TIMEOUT_MS, startPod } from "../pods.ts";
import { summarize } from "../stats.ts";
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

export async function execSync(ctx: BenchContext): Promise<void> {
  const containerId = await runningContainer(ctx);
  const once = async () => {
    const r = await ctx.client.runtime.execSync({ containerId, cmd: ["echo", "hi"], timeout: 10n }, { timeoutMs: CALL_TIMEOUT_MS });
    const out = Buffer.from(r.stdout).toString();
    if (r.exitCode !== 0 || out !== "hi\n") throw new Error(`exec "echo hi" in ${containerId}: exit ${r.exitCode}, stdout ${JSON.stringify(out)}, stderr ${JSON.stringify(Buffer.from(r.stderr).toString())}`);
  };
  await once();
  const samples: number[] = [];
  const cpu0 = cpuMsOf(ctx.instance.daemonPids());
  for (let i = 0; i < EXEC_RUNS; i++) {
    ctx.checkTime();
    const t = performance.now();
    await once();
    samples.push(performance.now() - t);
  }
  const cpu = cpuMsOf(ctx.instance.daemonPids()) - cpu0;
  const s = summarize(samples);
  ctx.record("ExecSync p50", "ms", { value: s.p50, samples });
  ctx.record("ExecSync p95", "ms", { value: s.p95 });
  ctx.record("daemon CPU per ExecSync", "ms", { value: cpu / EXEC_RUNS });
}
