import type { UpdateContainerResourcesRequestSchema, UpdateContainerResourcesResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import type { UnaryImpl } from "../rpc.ts";
import { updateContainerResources as update } from "../container/ops/update-resources.ts";

/** UpdateContainerResources: applies CPU, memory, pids and hugepage limits through the OCI runtime and records them. */
export const updateContainerResources: UnaryImpl<typeof UpdateContainerResourcesRequestSchema, typeof UpdateContainerResourcesResponseSchema> = async (ctx, req) => {
  await update(ctx.containers.deps, req.containerId, req.linux);
  return {};
};
