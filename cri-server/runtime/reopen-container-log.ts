import type { ReopenContainerLogRequestSchema, ReopenContainerLogResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import type { UnaryImpl } from "../rpc.ts";
import { reopenContainerLog as reopen } from "../container/ops/reopen-log.ts";

/** ReopenContainerLog: conmon reopens the log file (after kubelet rotated it); fails for a stopped container. */
export const reopenContainerLog: UnaryImpl<typeof ReopenContainerLogRequestSchema, typeof ReopenContainerLogResponseSchema> = async (ctx, req, call) => {
  await reopen(ctx.containers.deps, req.containerId, call.signal);
  return {};
};
