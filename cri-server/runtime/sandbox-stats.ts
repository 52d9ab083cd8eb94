import type { PodSandboxStatsRequestSchema, PodSandboxStatsResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import type { UnaryImpl } from "../rpc.ts";
import { podContainers, podTarget, statsCollector } from "./stats-targets.ts";

/** PodSandboxStats: pod cpu/memory/processes, network of the pod's netns, and its containers' stats. Unknown ids -> NOT_FOUND. */
export const podSandboxStats: UnaryImpl<typeof PodSandboxStatsRequestSchema, typeof PodSandboxStatsResponseSchema> = async (ctx, req) => {
  const sb = ctx.sandboxes.get(req.podSandboxId);
  const target = podTarget(ctx, sb, await podContainers(ctx, sb.id));
  return { stats: await statsCollector(ctx).podSandboxStats(target) };
};
