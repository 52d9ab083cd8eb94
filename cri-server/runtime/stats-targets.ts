// Shared by the stats and metrics RPCs: one StatsCollector per process (made on
// first use), and the records -> collector targets mapping.
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ContainerAttributesSchema, PodSandboxAttributesSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import type { Context } from "../context.ts";
import type { ContainerRecord } from "../container/container-record.ts";
import type { SandboxRecord } from "../sandbox/sandbox-record.ts";
import { parseNetDev, readNetDev, StatsCollector, type ContainerStatsTarget, type PodStatsTarget } from "../stats/index.ts";
import { cgroupParentPath } from "../../oci-runtime/cgroups/paths.ts";
import { notFound } from "../../oci-runtime/foundation/errdefs.ts";
import { mountHelperPath, readPinnedNetDev } from "../../oci-runtime/mounts/mount-helper.ts";
import { isRunning } from "../container/state.ts";
import { canRunContainers } from "../sandbox/state.ts";

export type ContainerAttrs = MessageInitShape<typeof ContainerAttributesSchema>;
export type PodAttrs = MessageInitShape<typeof PodSandboxAttributesSchema>;

let collector: StatsCollector | undefined;

/**
 * A pod with neither an infra process nor a running container has no process in its network
 * namespace: its target names the pinned netns by a stand-in pid below 0 (the collector takes
 * pids), which the collector's netDev reads through berth-mount netdev. One stand-in per netns
 * path, at most MAX_STAND_INS (then they start over; a lookup that misses reports no network).
 */
const MAX_STAND_INS = 4096;
const standInOf = new Map<string, number>();
const netnsOf = new Map<number, string>();
export function netnsStandIn(netnsPath: string): number {
  let k = standInOf.get(netnsPath);
  if (k === undefined) {
    if (standInOf.size >= MAX_STAND_INS) { standInOf.clear(); netnsOf.clear(); }
    k = -(standInOf.size + 1);
    standInOf.set(netnsPath, k);
    netnsOf.set(k, netnsPath);
  }
  return k;
}

/** The process-wide collector (its caches and CPU history are shared by every caller). */
export function statsCollector(ctx: Context): StatsCollector {
  const helper = mountHelperPath(ctx.config.runtime.io_helper);
  collector ??= new StatsCollector({
    log: ctx.log.child({ component: "stats" }),
    netDev: async (pid) => {
      if (pid > 0) return readNetDev(pid);
      const path = netnsOf.get(pid);
      if (!path) throw notFound(`no pinned network namespace for stand-in ${pid}`);
      return parseNetDev(await readPinnedNetDev(helper, path));
    },
  });
  return collector;
}

const containerAttrs = (rec: ContainerRecord): ContainerAttrs => ({
  id: rec.id, metadata: rec.metadata, labels: rec.labels, annotations: rec.annotations,
});

/**
 * A container's target: its cgroup only while it runs (a stopped container
 * reports attributes and its writable layer), and its overlay upper dir.
 */
export function containerTarget(ctx: Context, rec: ContainerRecord): ContainerStatsTarget<ContainerAttrs> {
  const t: ContainerStatsTarget<ContainerAttrs> = {
    id: rec.id,
    writableLayerDir: ctx.images.upperDir(rec.id),
    fsMountpoint: ctx.images.root,
    attributes: containerAttrs(rec),
  };
  if (isRunning(rec.state) && rec.cgroupsPath) t.cgroupsPath = rec.cgroupsPath;
  return t;
}

/**
 * A pod's target: the kubelet-given cgroup parent when there is one (it holds
 * the infra process and every container), otherwise sums over the containers;
 * network counters from the infra process while the pod is ready, or, for a pod
 * without one, from a running container (every container of the pod is in its
 * pinned network namespace), or from the pinned netns through berth-mount.
 */
export function podTarget(ctx: Context, sb: SandboxRecord, containers: ContainerRecord[]): PodStatsTarget<PodAttrs, ContainerAttrs> {
  const t: PodStatsTarget<PodAttrs, ContainerAttrs> = {
    id: sb.id,
    attributes: { id: sb.id, metadata: sb.metadata, labels: sb.labels, annotations: sb.annotations },
    containers: containers.map((c) => containerTarget(ctx, c)),
  };
  if (canRunContainers(sb.state) && sb.cgroupParent) t.cgroupsPath = cgroupParentPath(sb.cgroupParent); // checked at RunPodSandbox
  if (canRunContainers(sb.state) && sb.netnsPath) {
    // The infra process, else a running container (cheapest: a file read), else the pin itself.
    t.netnsPid = sb.infra.pid > 0 ? sb.infra.pid : containers.find((c) => isRunning(c.state) && c.pid > 0)?.pid ?? netnsStandIn(sb.netnsPath);
  }
  return t;
}

/** Current (exit-refreshed) records of the given containers, skipping any removed meanwhile. */
export async function refreshed(ctx: Context, recs: ContainerRecord[]): Promise<ContainerRecord[]> {
  const out: ContainerRecord[] = [];
  for (const r of recs) {
    try { out.push(await ctx.containers.refresh(r.id)); } catch { /* removed meanwhile */ }
  }
  return out;
}

/** The (refreshed) containers of one pod. */
export function podContainers(ctx: Context, sandboxId: string): Promise<ContainerRecord[]> {
  return refreshed(ctx, ctx.containers.list().filter((c) => c.sandboxId === sandboxId));
}
