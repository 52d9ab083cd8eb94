// Memory with N running pods, RSS and PSS (/proc/PID/smaps_rollup) of the daemon, of its
// per-pod or per-container monitors (berth: conmon or berth-monitor; containerd: containerd-shim-runc-v2) and of
// the pod infra processes (catatonit: berth's infra, containerd's pause image), each apart.
// PSS splits shared pages (the node binary, libc) between the processes that map them.
import { setTimeout as sleep } from "node:timers/promises";
import type { BenchContext } from "../context.ts";
import { findInCgroup, heldMemfdBytes, MB, memUseOf, type MemUse } from "../host.ts";
import { startPod } from "../pods.ts";

export const MEMORY_METRICS = [
  ["daemon RSS idle", "MB"], ["daemon PSS idle", "MB"], ["daemon RSS", "MB"], ["daemon PSS", "MB"], ["daemon PSS anon", "MB"],
  ["monitors RSS", "MB"], ["monitors PSS", "MB"], ["infra RSS", "MB"], ["infra PSS", "MB"],
  ["helpers RSS per pod", "MB"], ["helpers PSS per pod", "MB"], ["daemon memfds held", "MB"], ["total RSS", "MB"], ["total PSS", "MB"],
  ["monitor processes", "count"], ["infra processes", "count"],
] as const;

/** The pod infra processes of a target's pods (catatonit under its cgroup parent). */
export const infraPids = (ctx: BenchContext): number[] => findInCgroup("catatonit", ctx.target.cgroupParent.replace(/^\//, ""));

/** Called right after the instance started, before any pod exists (after 2 s to settle). */
export async function recordIdle(ctx: BenchContext): Promise<MemUse> {
  await sleep(2000);
  return memUseOf(ctx.instance.daemonPids());
}

export async function memory(ctx: BenchContext, idle: MemUse): Promise<void> {
  ctx.record("daemon RSS idle", "MB", { value: idle.rss / MB });
  ctx.record("daemon PSS idle", "MB", { value: idle.pss / MB });
  const running = () => ctx.pool.filter((p) => p.started).length;
  if (running() < ctx.opts.pods) await ctx.needImages();
  while (running() < ctx.opts.pods) {
    ctx.checkTime();
    const pod = await startPod(ctx.client, ctx.podSpec("mem"), ctx.env.images.busybox, ctx.created);
    ctx.pool.push({ ...pod, started: true });
  }
  await sleep(2000); // let start-up garbage settle
  const daemon = memUseOf(ctx.instance.daemonPids());
  const monitorPids = ctx.instance.helperPids();
  const infra = infraPids(ctx);
  const monitors = memUseOf(monitorPids);
  const infraUse = memUseOf(infra);
  const pods = running();
  ctx.record("daemon RSS", "MB", { value: daemon.rss / MB });
  ctx.record("daemon PSS", "MB", { value: daemon.pss / MB });
  ctx.record("daemon PSS anon", "MB", { value: daemon.pssAnon / MB });
  ctx.record("monitors RSS", "MB", { value: monitors.rss / MB });
  ctx.record("monitors PSS", "MB", { value: monitors.pss / MB });
  ctx.record("infra RSS", "MB", { value: infraUse.rss / MB });
  ctx.record("infra PSS", "MB", { value: infraUse.pss / MB });
  ctx.record("helpers RSS per pod", "MB", { value: (monitors.rss + infraUse.rss) / MB / pods });
  ctx.record("helpers PSS per pod", "MB", { value: (monitors.pss + infraUse.pss) / MB / pods });
  // berthd's sealed runtime copies (oci-runtime/runtime/sealed-binary.ts) are shared memory outside any RSS: counted here.
  const memfds = heldMemfdBytes(ctx.instance.daemonPids());
  ctx.record("daemon memfds held", "MB", { value: memfds / MB });
  ctx.record("total RSS", "MB", { value: (daemon.rss + monitors.rss + infraUse.rss + memfds) / MB });
  ctx.record("total PSS", "MB", { value: (daemon.pss + monitors.pss + infraUse.pss + memfds) / MB });
  ctx.record("monitor processes", "count", { value: monitorPids.length });
  ctx.record("infra processes", "count", { value: infra.length });
}
