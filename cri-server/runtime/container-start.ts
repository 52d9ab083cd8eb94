import type { StartContainerRequestSchema, StartContainerResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import type { UnaryImpl } from "../rpc.ts";
import { startContainer as start } from "../container/ops/start.ts";

/** StartContainer: only a CREATED container starts; a runtime error keeps the runtime's own message. */
export const startContainer: UnaryImpl<typeof StartContainerRequestSchema, typeof StartContainerResponseSchema> = async (ctx, req) => {
  await start(ctx.containers.deps, req.containerId);
  return {};
};
