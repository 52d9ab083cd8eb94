import type { ListPodSandboxMetricsRequestSchema, ListPodSandboxMetricsResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import type { UnaryImpl } from "../rpc.ts";
import { buildPodSandboxMetrics, type ContainerLabelInfo } from "../stats/index.ts";
import { podContainers, podTarget, statsCollector } from "./stats-targets.ts";
import { canRunContainers } from "../sandbox/state.ts";

/** ListPodSandboxMetrics: cAdvisor-style metrics of every ready pod and its containers. */
export const listPodSandboxMetrics: UnaryImpl<typeof ListPodSandboxMetricsRequestSchema, typeof ListPodSandboxMetricsResponseSchema> = async (ctx) => {
  const stats = statsCollector(ctx);
  stats.prune();
  const pods = ctx.sandboxes.list().filter((sb) => canRunContainers(sb.state));
  const podMetrics = await Promise.all(pods.map(async (sb) => {
    const recs = await podContainers(ctx, sb.id);
    const labels: Record<string, ContainerLabelInfo> = {};
    for (const r of recs) labels[r.id] = { name: r.metadata.name, image: r.image.image };
    return buildPodSandboxMetrics(await stats.podSample(podTarget(ctx, sb, recs)), labels);
  }));
  return { podMetrics };
};
