import type { PortForwardRequestSchema, PortForwardResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import { failedPrecondition, invalidArgument } from "../../oci-runtime/foundation/errdefs.ts";
import type { UnaryImpl } from "../rpc.ts";

/** PortForward: validates the sandbox and ports and answers a single-use URL. */
export const portForward: UnaryImpl<typeof PortForwardRequestSchema, typeof PortForwardResponseSchema> = async (ctx, req) => {
  const sb = ctx.sandboxes.get(req.podSandboxId);
  if (sb.state !== "ready") throw failedPrecondition(`pod sandbox ${sb.id} is not ready`);
  for (const p of req.port) if (p < 1 || p > 65535) throw invalidArgument(`port ${p} is not a valid port`);
  return { url: ctx.streaming.getUrl("portforward", { podSandboxId: sb.id, ports: [...req.port] }) };
};
