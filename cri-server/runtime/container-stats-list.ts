import type { ListContainerStatsRequestSchema, ListContainerStatsResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import type { UnaryImpl } from "../rpc.ts";
import { matchIdPrefix, matchLabels } from "./filters.ts";
import { containerTarget, refreshed, statsCollector } from "./stats-targets.ts";

/** ListContainerStats with filters: id (prefix), pod sandbox id (prefix), label selector. */
export const listContainerStats: UnaryImpl<typeof ListContainerStatsRequestSchema, typeof ListContainerStatsResponseSchema> = async (ctx, req) => {
  const f = req.filter;
  const recs = await refreshed(ctx, ctx.containers.list().filter((c) =>
    matchIdPrefix(c.id, f?.id) && matchIdPrefix(c.sandboxId, f?.podSandboxId) && matchLabels(c.labels, f?.labelSelector)));
  return { stats: await statsCollector(ctx).listContainerStats(recs.map((r) => containerTarget(ctx, r))) };
};
