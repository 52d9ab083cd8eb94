import type { StopContainerRequestSchema, StopContainerResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import { invalidArgument } from "../../oci-runtime/foundation/errdefs.ts";
import type { UnaryImpl } from "../rpc.ts";
import { stopContainer as stop } from "../container/ops/stop.ts";

/**
 * StopContainer: the stop signal, then SIGKILL after `timeout` seconds (0 kills at once).
 * CRI: stopping an already stopped or unknown container is not an error.
 */
export const stopContainer: UnaryImpl<typeof StopContainerRequestSchema, typeof StopContainerResponseSchema> = async (ctx, req) => {
  if (!req.containerId) throw invalidArgument("container_id must not be empty");
  if (req.timeout < 0n) throw invalidArgument(`timeout must not be negative, got ${req.timeout}`);
  await stop(ctx.containers.deps, req.containerId, Number(req.timeout));
  return {};
};
