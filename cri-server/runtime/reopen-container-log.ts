import type { ReopenContainerLogRequestSchema, ReopenContainerLogResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import type { UnaryImpl } from "../rpc.ts";

/** ReopenContainerLog: conmon reopens the log file (after kubelet rotated it); fails for a stopped container. */
export const reopenContainerLog: UnaryImpl<typeof ReopenContainerLogRequestSchema, typeof ReopenContainerLogResponseSchema> = async (ctx, req) => {
  await ctx.containers.reopenLog(req.containerId);
  return {};
};
