import type { ListContainersRequestSchema, ListContainersResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import type { UnaryImpl } from "../rpc.ts";
import { matchIdPrefix, matchLabels } from "./filters.ts";
import { criContainerState, toContainer } from "./container-view.ts";

/** ListContainers with filters: id prefix, state, pod sandbox id (prefix), label selector. */
export const listContainers: UnaryImpl<typeof ListContainersRequestSchema, typeof ListContainersResponseSchema> = async (ctx, req) => {
  const f = req.filter;
  const out = [];
  for (const rec0 of ctx.containers.list()) {
    if (!matchIdPrefix(rec0.id, f?.id) || !matchIdPrefix(rec0.sandboxId, f?.podSandboxId) || !matchLabels(rec0.labels, f?.labelSelector)) continue;
    const rec = await ctx.containers.refresh(rec0.id);
    if (f?.state && f.state.state !== criContainerState(rec)) continue;
    out.push(toContainer(rec));
  }
  return { containers: out };
};
