import type { RemovePodSandboxRequestSchema, RemovePodSandboxResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import { invalidArgument } from "../../oci-runtime/foundation/errdefs.ts";
import type { UnaryImpl } from "../rpc.ts";
import { removeSandbox } from "../sandbox/ops/remove.ts";

/** RemovePodSandbox: stops first, removes containers and all pod state. Unknown ids succeed (CRI). */
export const removePodSandbox: UnaryImpl<typeof RemovePodSandboxRequestSchema, typeof RemovePodSandboxResponseSchema> = async (ctx, req) => {
  if (!req.podSandboxId) throw invalidArgument("pod_sandbox_id must not be empty");
  await removeSandbox(ctx.sandboxDeps, req.podSandboxId);
  return {};
};
