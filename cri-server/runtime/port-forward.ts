import type { PortForwardRequestSchema, PortForwardResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import { failedPrecondition, invalidArgument } from "../../oci-runtime/foundation/errdefs.ts";
import type { UnaryImpl } from "../rpc.ts";
import { MAX_WS_PORTS } from "../streaming/limits.ts";
import { canRunContainers } from "../sandbox/state.ts";

/** PortForward: validates the sandbox and ports and answers a single-use URL. */
export const portForward: UnaryImpl<typeof PortForwardRequestSchema, typeof PortForwardResponseSchema> = async (ctx, req) => {
  const sb = ctx.sandboxes.get(req.podSandboxId);
  if (!canRunContainers(sb.state)) throw failedPrecondition(`pod sandbox ${sb.id} is not ready`);
  if (req.port.length > MAX_WS_PORTS) throw invalidArgument(`port lists ${req.port.length} ports, the limit is ${MAX_WS_PORTS}`);
  for (const p of req.port) if (p < 1 || p > 65535) throw invalidArgument(`port ${p} is not a valid port`);
  return { url: await ctx.streaming.getUrl("portforward", { podSandboxId: sb.id, ports: [...req.port] }) };
};
