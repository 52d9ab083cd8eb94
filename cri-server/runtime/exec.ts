import type { ExecRequestSchema, ExecResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import { failedPrecondition, invalidArgument } from "../../oci-runtime/foundation/errdefs.ts";
import type { UnaryImpl } from "../rpc.ts";
import { checkStreams } from "./stream-request.ts";
import { canExec } from "../container/state.ts";

/** Exec: validates and answers a single-use URL on berth's streaming server. */
export const exec: UnaryImpl<typeof ExecRequestSchema, typeof ExecResponseSchema> = async (ctx, req) => {
  if (!req.cmd.length) throw invalidArgument("cmd must not be empty");
  checkStreams("Exec", req);
  const rec = await ctx.containers.refresh(ctx.containers.get(req.containerId).id);
  if (!canExec(rec.state)) throw failedPrecondition(`container ${rec.id} is not running (state ${rec.state})`);
  return { url: await ctx.streaming.getUrl("exec", { containerId: rec.id, cmd: req.cmd, tty: req.tty, stdin: req.stdin, stdout: req.stdout, stderr: req.stderr }) };
};
