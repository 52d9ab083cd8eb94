import type { ContainerStatsRequestSchema, ContainerStatsResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import type { UnaryImpl } from "../rpc.ts";
import { containerTarget, statsCollector } from "./stats-targets.ts";

/** ContainerStats: cpu and memory while running; the writable layer always. Unknown ids -> NOT_FOUND. */
export const containerStats: UnaryImpl<typeof ContainerStatsRequestSchema, typeof ContainerStatsResponseSchema> = async (ctx, req) => {
  const rec = await ctx.containers.refresh(ctx.containers.get(req.containerId).id);
  return { stats: await statsCollector(ctx).containerStats(containerTarget(ctx, rec)) };
};
