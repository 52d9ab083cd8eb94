import type { ListPodSandboxStatsRequestSchema, ListPodSandboxStatsResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import type { UnaryImpl } from "../rpc.ts";
import { matchIdPrefix, matchLabels } from "./filters.ts";
import { podContainers, podTarget, statsCollector } from "./stats-targets.ts";

/** ListPodSandboxStats with filters: id (prefix), label selector. */
export const listPodSandboxStats: UnaryImpl<typeof ListPodSandboxStatsRequestSchema, typeof ListPodSandboxStatsResponseSchema> = async (ctx, req) => {
  const f = req.filter;
  const pods = ctx.sandboxes.list().filter((sb) => matchIdPrefix(sb.id, f?.id) && matchLabels(sb.labels, f?.labelSelector));
  const targets = await Promise.all(pods.map(async (sb) => podTarget(ctx, sb, await podContainers(ctx, sb.id))));
  return { stats: await statsCollector(ctx).listPodSandboxStats(targets) };
};
