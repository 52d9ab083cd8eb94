// Pod start: RunPodSandbox, CreateContainer and StartContainer latency over N sequential
// pods of one busybox sleep container. The pods stay running for exec and memory.
import { cellOf, type BenchContext, type RunningPod } from "../context.ts";
import { CALL_TIMEOUT_MS, podConfig, sleepContainerConfig, type Step } from "../pods.ts";
import type { Cell } from "../report.ts";
import { summarize } from "../stats.ts";
import { cpuMsOf } from "../cpu.ts";

const STEPS: Step[] = ["RunPodSandbox", "CreateContainer", "StartContainer"];
export const POD_START_METRICS = [...STEPS.flatMap((s) => [[`${s} p50`, "ms"], [`${s} p95`, "ms"]] as const), ["daemon CPU per pod start", "ms"] as const];

export async function podStart(ctx: BenchContext): Promise<void> {
  const samples: Record<Step, number[]> = { RunPodSandbox: [], CreateContainer: [], StartContainer: [] };
  const failed: Partial<Record<Step, Cell>> = {};
  const imageProblem = await ctx.prepare();
  if (imageProblem) failed.CreateContainer = failed.StartContainer = imageProblem;
  const opts = { timeoutMs: CALL_TIMEOUT_MS };
  const cpu0 = cpuMsOf(ctx.instance.daemonPids());
  for (let i = 0; i < ctx.opts.pods; i++) {
    ctx.checkTime();
    const config = podConfig(ctx.podSpec("start"));
    let t = performance.now();
    const { podSandboxId } = await ctx.client.runtime.runPodSandbox({ config }, opts);
    samples.RunPodSandbox.push(performance.now() - t);
    ctx.created.pods.add(podSandboxId);
    const pod: RunningPod = { podId: podSandboxId, containerIds: [], started: false };
    ctx.pool.push(pod);
    if (failed.CreateContainer) continue;
    try {
      t = performance.now();
      const { containerId } = await ctx.client.runtime.createContainer({ podSandboxId, config: sleepContainerConfig(ctx.env.images.busybox), sandboxConfig: config }, opts);
      samples.CreateContainer.push(performance.now() - t);
      pod.containerIds.push(containerId);
      ctx.created.containers.add(containerId);
    } catch (err) {
      failed.CreateContainer = failed.StartContainer = cellOf(err);
      continue;
    }
    if (failed.StartContainer) continue;
    try {
      t = performance.now();
      await ctx.client.runtime.startContainer({ containerId: pod.containerIds[0]! }, opts);
      samples.StartContainer.push(performance.now() - t);
      pod.started = true;
    } catch (err) {
      failed.StartContainer = cellOf(err);
    }
  }
  const cpu = cpuMsOf(ctx.instance.daemonPids()) - cpu0;
  for (const step of STEPS) {
    const problem = failed[step];
    const s = summarize(samples[step]);
    ctx.record(`${step} p50`, "ms", problem ?? { value: s.p50, samples: samples[step] });
    ctx.record(`${step} p95`, "ms", problem ?? { value: s.p95 });
  }
  // The daemon's own CPU (all threads; not runc or other children) over the whole loop, per pod.
  ctx.record("daemon CPU per pod start", "ms", { value: cpu / ctx.opts.pods });
}
