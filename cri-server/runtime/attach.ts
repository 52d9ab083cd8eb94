import type { AttachRequestSchema, AttachResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import { failedPrecondition } from "../../oci-runtime/foundation/errdefs.ts";
import type { UnaryImpl } from "../rpc.ts";
import { checkStreams } from "./stream-request.ts";
import { canExec } from "../container/state.ts";

/** Attach: validates and answers a single-use URL; the session connects to conmon's attach socket. */
export const attach: UnaryImpl<typeof AttachRequestSchema, typeof AttachResponseSchema> = async (ctx, req) => {
  checkStreams("Attach", req);
  const rec = await ctx.containers.refresh(ctx.containers.get(req.containerId).id);
  if (!canExec(rec.state)) throw failedPrecondition(`container ${rec.id} is not running (state ${rec.state})`);
  return { url: await ctx.streaming.getUrl("attach", { containerId: rec.id, tty: req.tty, stdin: req.stdin, stdout: req.stdout, stderr: req.stderr }) };
};
