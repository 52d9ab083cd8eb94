// Scale: pods are added step by step up to each size of --scale (default 20, 100, 250), the
// runtimes taking turns step by step. Each step records the start latency of the pods it added
// (p50, p99) and the daemon's RSS/PSS once they run. Up to --scale-full pods get a busybox
// sleep container (RunPodSandbox + CreateContainer + StartContainer); beyond, sandbox-only pods
// (RunPodSandbox). After the largest size the pods are removed down to the first size again and
// the daemon's RSS is taken once more ("after the load"), then after removing them all.
import { setTimeout as sleep } from "node:timers/promises";
import type { BenchContext } from "../context.ts";
import { MB, memUseOf } from "../host.ts";
import { CALL_TIMEOUT_MS, mapLimit, podConfig, startPod } from "../pods.ts";
import { percentile } from "../stats.ts";

export const SCALE_BUDGET_MS = 300_000;

/** The metrics of one step (pods added up to `size`). */
export function stepMetrics(size: number, full: boolean): [string, string][] {
  const what = full ? "pod start" : "sandbox-only pod start";
  return [[`${size} pods: ${what} p50`, "ms"], [`${size} pods: ${what} p99`, "ms"], [`${size} pods: daemon RSS`, "MB"], [`${size} pods: daemon PSS`, "MB"]];
}

export function afterMetrics(first: number, largest: number): [string, string][] {
  return [[`back at ${first} pods after ${largest}: daemon RSS`, "MB"], [`back at ${first} pods after ${largest}: daemon PSS`, "MB"], ["after removing all: daemon RSS", "MB"]];
}

export const scaleMetrics = (sizes: readonly number[], full: number): [string, string][] => [
  ...sizes.flatMap((s) => stepMetrics(s, s <= full)),
  ...(sizes.length ? afterMetrics(sizes[0]!, sizes[sizes.length - 1]!) : []),
];

interface ScalePod { podId: string; containerIds: string[] }

/** Starts pods in `ctx` until it runs `size`; returns each new pod's start latency (ms). */
async function grow(ctx: BenchContext, pods: ScalePod[], size: number): Promise<number[]> {
  const samples: number[] = [];
  const opts = { timeoutMs: CALL_TIMEOUT_MS };
  while (pods.length < size) {
    ctx.checkTime();
    const t = performance.now();
    if (pods.length < ctx.opts.scaleFull) {
      const pod = await startPod(ctx.client, ctx.podSpec("scale"), ctx.env.images.busybox, ctx.created).catch((err: unknown) => {
        const partial = (err as { pod?: ScalePod }).pod;
        if (partial) pods.push(partial);
        throw err;
      });
      samples.push(performance.now() - t);
      pods.push(pod);
    } else {
      const { podSandboxId } = await ctx.client.runtime.runPodSandbox({ config: podConfig(ctx.podSpec("scale")) }, opts);
      samples.push(performance.now() - t);
      ctx.created.pods.add(podSandboxId);
      pods.push({ podId: podSandboxId, containerIds: [] });
    }
  }
  return samples;
}

/** Stops and removes the newest pods until `size` are left, 4 at a time (removal is not timed). */
async function shrink(ctx: BenchContext, pods: ScalePod[], size: number): Promise<void> {
  const opts = { timeoutMs: CALL_TIMEOUT_MS };
  const doomed = pods.splice(size);
  try {
    await mapLimit(doomed, 4, async (pod) => {
      ctx.checkTime();
      for (const id of pod.containerIds) {
        await ctx.client.runtime.stopContainer({ containerId: id, timeout: 0n }, opts);
        await ctx.client.runtime.removeContainer({ containerId: id }, opts);
        ctx.created.containers.delete(id);
      }
      await ctx.client.runtime.stopPodSandbox({ podSandboxId: pod.podId }, opts);
      await ctx.client.runtime.removePodSandbox({ podSandboxId: pod.podId }, opts);
      ctx.created.pods.delete(pod.podId);
      pod.podId = "";
    });
  } finally {
    pods.push(...doomed.filter((p) => p.podId)); // not removed: the caller's teardown tries again
  }
}

const settledMem = async (ctx: BenchContext) => {
  await sleep(2000);
  return memUseOf(ctx.instance.daemonPids());
};

/**
 * Runs the scale steps on every context, taking turns step by step. A context whose step
 * fails gets error cells for the rest of its steps; pods are removed at the end either way.
 */
export async function scale(ctxs: readonly BenchContext[]): Promise<void> {
  const state = new Map(ctxs.map((c) => [c, { pods: [] as ScalePod[], failed: false }]));
  const first = ctxs[0]?.opts.scale ?? [];
  const sizes = [...first];
  const full = ctxs[0]?.opts.scaleFull ?? 0;
  const all = scaleMetrics(sizes, full);
  try {
    for (const size of sizes) {
      for (const ctx of ctxs) {
        const st = state.get(ctx)!;
        if (st.failed) continue;
        await ctx.run("scale", all, SCALE_BUDGET_MS, async () => {
          try {
            await ctx.needImages();
            const samples = await grow(ctx, st.pods, size);
            const mem = await settledMem(ctx);
            const [p50, p99, rss, pss] = stepMetrics(size, size <= full);
            ctx.record(p50![0], "ms", { value: percentile(samples, 50), samples });
            ctx.record(p99![0], "ms", { value: percentile(samples, 99) });
            ctx.record(rss![0], "MB", { value: mem.rss / MB });
            ctx.record(pss![0], "MB", { value: mem.pss / MB });
            ctx.log(`${ctx.target.name}: ${size} pods running; daemon RSS ${(mem.rss / MB).toFixed(1)} MB`);
          } catch (err) {
            st.failed = true;
            throw err;
          }
        });
      }
    }
    if (sizes.length < 2) return;
    for (const ctx of ctxs) {
      const st = state.get(ctx)!;
      if (st.failed) continue;
      await ctx.run("scale", afterMetrics(sizes[0]!, sizes[sizes.length - 1]!), SCALE_BUDGET_MS, async () => {
        await shrink(ctx, st.pods, sizes[0]!);
        const mem = await settledMem(ctx);
        const [rss, pss] = afterMetrics(sizes[0]!, sizes[sizes.length - 1]!);
        ctx.record(rss![0], "MB", { value: mem.rss / MB });
        ctx.record(pss![0], "MB", { value: mem.pss / MB });
      });
    }
  } finally {
    for (const ctx of ctxs) {
      const st = state.get(ctx)!;
      await shrink(ctx, st.pods, 0).catch((err: unknown) => ctx.log(`${ctx.target.name}: scale teardown: ${(err as Error).message}`));
      if (!st.failed && sizes.length >= 2) {
        const mem = await settledMem(ctx);
        ctx.record("after removing all: daemon RSS", "MB", { value: mem.rss / MB });
      }
    }
  }
}
