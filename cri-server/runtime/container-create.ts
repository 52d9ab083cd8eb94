import type { CreateContainerRequestSchema, CreateContainerResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import type { UnaryImpl } from "../rpc.ts";
import { createContainer as create } from "../container/ops/create.ts";

/** CreateContainer: rootfs, bundle and conmon; the container is CREATED on success. */
export const createContainer: UnaryImpl<typeof CreateContainerRequestSchema, typeof CreateContainerResponseSchema> = async (ctx, req) => ({
  containerId: await create(ctx.containers.deps, req),
});
