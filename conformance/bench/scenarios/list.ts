// ListContainers with many containers: created (not started) busybox containers, 20 per pod.
import type { BenchContext } from "../context.ts";
import { CALL_TIMEOUT_MS, mapLimit, podConfig, removeAllPods, sleepContainerConfig } from "../pods.ts";
import { summarize } from "../stats.ts";

export const LIST_CALLS = 20;
const PER_POD = 20;
export const LIST_METRICS = [["ListContainers p50", "ms"], ["ListContainers p95", "ms"], ["containers listed", "count"]] as const;

export async function listContainers(ctx: BenchContext): Promise<void> {
  await ctx.needImages();
  const opts = { timeoutMs: CALL_TIMEOUT_MS };
  const total = ctx.opts.listContainers;
  try {
    const pods: { id: string; config: ReturnType<typeof podConfig>; count: number }[] = [];
    for (let made = 0; made < total; made += PER_POD) {
      ctx.checkTime();
      const config = podConfig(ctx.podSpec("list"));
      const { podSandboxId } = await ctx.client.runtime.runPodSandbox({ config }, opts);
      ctx.created.pods.add(podSandboxId);
      pods.push({ id: podSandboxId, config, count: Math.min(PER_POD, total - made) });
    }
    const jobs = pods.flatMap((p) => Array.from({ length: p.count }, (_, i) => ({ p, i })));
    await mapLimit(jobs, 4, async ({ p, i }) => {
      ctx.checkTime();
      const { containerId } = await ctx.client.runtime.createContainer({ podSandboxId: p.id, config: sleepContainerConfig(ctx.env.images.busybox, `c${i}`), sandboxConfig: p.config }, opts);
      ctx.created.containers.add(containerId);
    });
    const listed = (await ctx.client.runtime.listContainers({}, opts)).containers.length; // warm-up
    const samples: number[] = [];
    for (let i = 0; i < LIST_CALLS; i++) {
      ctx.checkTime();
      const t = performance.now();
      await ctx.client.runtime.listContainers({}, opts);
      samples.push(performance.now() - t);
    }
    const s = summarize(samples);
    ctx.record("ListContainers p50", "ms", { value: s.p50, samples });
    ctx.record("ListContainers p95", "ms", { value: s.p95 });
    ctx.record("containers listed", "count", { value: listed });
  } finally {
    await removeAllPods(ctx.client, ctx.created);
  }
}
