import type { ExecSyncRequestSchema, ExecSyncResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import { invalidArgument } from "../../oci-runtime/foundation/errdefs.ts";
import type { UnaryImpl } from "../rpc.ts";
import { execSyncInContainer } from "../container/ops/exec-sync.ts";

/** ExecSync: runs a command in a running container; the timeout kills it and answers DEADLINE_EXCEEDED, a cancelled call kills it too. */
export const execSync: UnaryImpl<typeof ExecSyncRequestSchema, typeof ExecSyncResponseSchema> = async (ctx, req, call) => {
  if (!req.containerId) throw invalidArgument("container_id must not be empty");
  if (req.timeout < 0n) throw invalidArgument(`timeout must not be negative, got ${req.timeout}`);
  const r = await execSyncInContainer(ctx.containers.deps, req.containerId, req.cmd, Number(req.timeout), call.signal);
  return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode };
};
