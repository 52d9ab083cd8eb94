// N pods at once: wall time of N concurrent RunPodSandbox+CreateContainer+StartContainer.
import type { BenchContext } from "../context.ts";
import { removeAllPods, startPod, type StartedPod } from "../pods.ts";

export const CONCURRENT_METRICS = [["wall time", "ms"], ["per pod", "ms"]] as const;

export async function concurrent(ctx: BenchContext): Promise<void> {
  await ctx.needImages();
  const n = ctx.opts.pods;
  const t = performance.now();
  const settled = await Promise.allSettled(Array.from({ length: n }, () => startPod(ctx.client, ctx.podSpec("burst"), ctx.env.images.busybox, ctx.created)));
  const wall = performance.now() - t;
  const failure = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
  await removeAllPods(ctx.client, ctx.created);
  if (failure) throw failure.reason;
  ctx.log(`${ctx.target.name}: ${settled.filter((s): s is PromiseFulfilledResult<StartedPod> => s.status === "fulfilled").length} pods started concurrently`);
  ctx.record("wall time", "ms", { value: wall });
  ctx.record("per pod", "ms", { value: wall / n });
}
