// ListContainers with many containers: created (not started) busybox containers, 20 per pod.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { ListContainersResponseSchema } from "../../../proto/gen/runtime/v1/api_pb.js";
import { roundFigures, type Rounds } from "../alternate.ts";
import type { BenchContext } from "../context.ts";
import { CALL_TIMEOUT_MS, mapLimit, podConfig, sleepContainerConfig } from "../pods.ts";
import { percentile } from "../stats.ts";
import { cpuMsOf } from "../cpu.ts";

/**
 * Calls timed for the first figure (the first ones a fresh daemon answers), then for the steady
 * one (what kubelet's relist, once a second, meets). Fresh node processes answer their first calls
 * slower while their code warms up: a fresh berthd and a fresh client, p50 1.85 ms over the first
 * 20 calls, 1.42 ms over the next 300 and 1.25 ms over the 300 after.
 */
export const LIST_FIRST_CALLS = 20;
export const LIST_CALLS = 100;
/** Untimed calls between the two figures: the steady one is taken on warm code, client and daemon. */
export const LIST_WARM_CALLS = 500;
const PER_POD = 20;
export const LIST_METRICS = [
  ["ListContainers p50", "ms"], ["ListContainers p95", "ms"], ["ListContainers first 20 p50", "ms"], ["containers listed", "count"],
  ["ListContainers reply size", "KB"], ["daemon CPU per ListContainers", "ms"],
] as const;

/**
 * The benchmark's own client decodes a 100-container reply with protobuf-es, whose code warms up
 * over hundreds of calls: against one berthd, a fresh client's first 20 calls had p50 2.15 ms and a
 * client that had made 1100 calls before 1.35 ms. The runtime measured first would pay that. So the
 * client's decoding is warmed once, before any runtime, on a reply of the same shape made here.
 */
let clientWarm = false;
export function warmClientDecoding(rounds = 3000): void {
  if (clientWarm) return;
  clientWarm = true;
  const bytes = toBinary(ListContainersResponseSchema, create(ListContainersResponseSchema, {
    containers: Array.from({ length: 100 }, (_, i) => ({
      id: "a".repeat(64), podSandboxId: "b".repeat(64), imageRef: `sha256:${"c".repeat(64)}`, imageId: `sha256:${"c".repeat(64)}`,
      state: 0, createdAt: BigInt(Date.now()) * 1_000_000n, labels: { "berth-bench": "1" }, annotations: {},
      metadata: { name: `c${i}`, attempt: 0 }, image: { image: "127.0.0.1:5000/busybox:latest", userSpecifiedImage: "127.0.0.1:5000/busybox:latest" },
    })),
  }));
  for (let i = 0; i < rounds; i++) fromBinary(ListContainersResponseSchema, bytes);
}

interface ListState { rounds: number[][] }

/**
 * Set-up on each runtime: 100 created containers, one untimed call (the first encodes every
 * container), the first LIST_FIRST_CALLS calls timed, then LIST_WARM_CALLS untimed calls over
 * which the daemon's own CPU per call is read. Then `rounds` rounds of LIST_CALLS timed calls,
 * taking turns between the runtimes: p50 (the median of the rounds' p50s, with their spread) and
 * p95 of every call.
 */
export const listRounds: Rounds<ListState> = {
  bench: "list",
  metrics: LIST_METRICS,
  budgetMs: 240_000,
  async setup(ctx) {
    warmClientDecoding();
    await ctx.needImages();
    const opts = { timeoutMs: CALL_TIMEOUT_MS };
    const total = ctx.opts.listContainers;
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
    const firstReply = await ctx.client.runtime.listContainers({}, opts);
    ctx.record("containers listed", "count", { value: firstReply.containers.length });
    // What the client decodes per call: its CPU, the same code for both runtimes, grows with it.
    ctx.record("ListContainers reply size", "KB", { value: toBinary(ListContainersResponseSchema, firstReply).length / 1000 });
    const first = await timedCalls(ctx, LIST_FIRST_CALLS);
    ctx.record("ListContainers first 20 p50", "ms", { value: percentile(first, 50), samples: first });
    // The daemon's own CPU over the untimed calls: the p50 also holds the client's decoding,
    // which grows with the reply's size.
    const cpu0 = cpuMsOf(ctx.instance.daemonPids());
    await timedCalls(ctx, LIST_WARM_CALLS);
    ctx.record("daemon CPU per ListContainers", "ms", { value: (cpuMsOf(ctx.instance.daemonPids()) - cpu0) / LIST_WARM_CALLS });
    return { rounds: [] };
  },
  async round(ctx, st) {
    st.rounds.push(await timedCalls(ctx, LIST_CALLS));
  },
  finish(ctx, st) {
    const f = roundFigures(st.rounds);
    ctx.record("ListContainers p50", "ms", f.p50);
    ctx.record("ListContainers p95", "ms", { value: f.p95 });
  },
  async teardown(ctx) { await ctx.removeCreated("list tear-down"); },
};

/** `n` ListContainers calls one after another; each one's latency in ms. */
async function timedCalls(ctx: BenchContext, n: number): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    ctx.checkTime();
    const t = performance.now();
    await ctx.client.runtime.listContainers({}, { timeoutMs: CALL_TIMEOUT_MS });
    samples.push(performance.now() - t);
  }
  return samples;
}
