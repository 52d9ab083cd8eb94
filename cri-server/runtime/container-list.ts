import type { ListContainersRequestSchema, ListContainersResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import type { UnaryImpl } from "../rpc.ts";
import { matchIdPrefix, matchLabels } from "./filters.ts";
import { criContainerState, toContainer } from "./container-view.ts";

/**
 * ListContainers with filters: id prefix, state, pod sandbox id (prefix), label selector.
 * Served from memory: exits reach the records through the exit-file watcher
 * (inotify, with a 1 s polling fallback), so listing hundreds of containers reads no file.
 */
export const listContainers: UnaryImpl<typeof ListContainersRequestSchema, typeof ListContainersResponseSchema> = async (ctx, req) => {
  const f = req.filter;
  return {
    containers: ctx.containers.list()
      .filter((rec) => matchIdPrefix(rec.id, f?.id) && matchIdPrefix(rec.sandboxId, f?.podSandboxId) && matchLabels(rec.labels, f?.labelSelector))
      .filter((rec) => !f?.state || f.state.state === criContainerState(rec))
      .map(toContainer),
  };
};
