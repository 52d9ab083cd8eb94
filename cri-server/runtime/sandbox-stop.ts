import type { StopPodSandboxRequestSchema, StopPodSandboxResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import { invalidArgument } from "../../oci-runtime/foundation/errdefs.ts";
import type { UnaryImpl } from "../rpc.ts";
import { stopSandbox } from "../sandbox/ops/stop.ts";

/** StopPodSandbox: stops every container and the infra, tears the network down. Unknown ids succeed (CRI). */
export const stopPodSandbox: UnaryImpl<typeof StopPodSandboxRequestSchema, typeof StopPodSandboxResponseSchema> = async (ctx, req) => {
  if (!req.podSandboxId) throw invalidArgument("pod_sandbox_id must not be empty");
  await stopSandbox(ctx.sandboxDeps, req.podSandboxId);
  return {};
};
