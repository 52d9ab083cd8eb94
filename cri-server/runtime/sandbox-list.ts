import type { ListPodSandboxRequestSchema, ListPodSandboxResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import type { UnaryImpl } from "../rpc.ts";
import { matchIdPrefix, matchLabels } from "./filters.ts";

/** ListPodSandbox with filters: id (or prefix), state, label selector. */
export const listPodSandbox: UnaryImpl<typeof ListPodSandboxRequestSchema, typeof ListPodSandboxResponseSchema> = async (ctx, req) => {
  const f = req.filter;
  const items = [];
  for (const rec of ctx.sandboxes.list()) {
    if (!matchIdPrefix(rec.id, f?.id) || !matchLabels(rec.labels, f?.labelSelector)) continue;
    const state = await ctx.sandboxes.liveState(rec);
    if (f?.state && f.state.state !== state) continue;
    items.push({
      id: rec.id,
      metadata: rec.metadata,
      state,
      createdAt: BigInt(rec.createdAt),
      labels: rec.labels,
      annotations: rec.annotations,
      runtimeHandler: rec.runtimeHandler,
    });
  }
  return { items };
};
