import type { RemoveContainerRequestSchema, RemoveContainerResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import { invalidArgument } from "../../oci-runtime/foundation/errdefs.ts";
import type { UnaryImpl } from "../rpc.ts";
import { removeContainer as remove } from "../container/ops/remove.ts";

/** RemoveContainer: kills a running container first. CRI: removing an unknown container is not an error. */
export const removeContainer: UnaryImpl<typeof RemoveContainerRequestSchema, typeof RemoveContainerResponseSchema> = async (ctx, req) => {
  if (!req.containerId) throw invalidArgument("container_id must not be empty");
  await remove(ctx.containers.deps, req.containerId);
  return {};
};
