import type { ListContainersRequestSchema, ListContainersResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import type { UnaryImpl } from "../rpc.ts";
import { matchIdPrefix, matchLabels } from "./filters.ts";
import { criContainerState, toContainer } from "./container-view.ts";

/** ListContainers with filters: id prefix, state, pod sandbox id (prefix), label selector. */
export const listContainers: UnaryImpl<typeof ListContainersRequestSchema, typeof ListContainersResponseSchema> = async (ctx, req) => {
  const f = req.filter;
  const picked = ctx.containers.list().filter((rec) =>
    matchIdPrefix(rec.id, f?.id) && matchIdPrefix(rec.sandboxId, f?.podSandboxId) && matchLabels(rec.labels, f?.labelSelector));
  // Exit files are checked in parallel: one slow stat must not serialise a list of hundreds.
  const fresh = await Promise.all(picked.map((rec) => ctx.containers.refresh(rec.id)));
  return { containers: fresh.filter((rec) => !f?.state || f.state.state === criContainerState(rec)).map(toContainer) };
};
