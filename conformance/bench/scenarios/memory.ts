// Memory with N running pods: the daemon's RSS and the total RSS of its per-pod or
// per-container helpers (berth: conmon; containerd: containerd-shim-runc-v2).
import { setTimeout as sleep } from "node:timers/promises";
import type { BenchContext } from "../context.ts";
import { MB, rssBytes } from "../host.ts";
import { startPod } from "../pods.ts";

export const MEMORY_METRICS = [
  ["daemon RSS idle", "MB"], ["daemon RSS", "MB"], ["helpers RSS", "MB"], ["total RSS", "MB"], ["helper RSS per pod", "MB"], ["helper processes", "count"],
] as const;

/** Called right after the instance started, before any pod exists. */
export function recordIdle(ctx: BenchContext): number {
  return rssBytes(ctx.instance.daemonPid()) / MB;
}

export async function memory(ctx: BenchContext, idleMb: number): Promise<void> {
  ctx.record("daemon RSS idle", "MB", { value: idleMb });
  const running = () => ctx.pool.filter((p) => p.started).length;
  if (running() < ctx.opts.pods) await ctx.needImages();
  while (running() < ctx.opts.pods) {
    ctx.checkTime();
    const pod = await startPod(ctx.client, ctx.podSpec("mem"), ctx.env.images.busybox, ctx.created);
    ctx.pool.push({ ...pod, started: true });
  }
  await sleep(2000); // let start-up garbage settle
  const daemon = rssBytes(ctx.instance.daemonPid()) / MB;
  const helpers = ctx.instance.helperPids();
  const helperMb = helpers.reduce((a, pid) => a + rssBytes(pid), 0) / MB;
  const pods = running();
  ctx.record("daemon RSS", "MB", { value: daemon });
  ctx.record("helpers RSS", "MB", { value: helperMb });
  ctx.record("total RSS", "MB", { value: daemon + helperMb });
  ctx.record("helper RSS per pod", "MB", { value: helperMb / pods });
  ctx.record("helper processes", "count", { value: helpers.length });
}
