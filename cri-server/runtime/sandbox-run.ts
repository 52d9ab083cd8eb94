import type { RunPodSandboxRequestSchema, RunPodSandboxResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import type { UnaryImpl } from "../rpc.ts";
import { runSandbox } from "../sandbox/ops/run.ts";

/** RunPodSandbox: namespaces, network, infra process; the pod is ready on success. */
export const runPodSandbox: UnaryImpl<typeof RunPodSandboxRequestSchema, typeof RunPodSandboxResponseSchema> = async (ctx, req, call) => ({
  // The call's deadline or cancellation kills the runtime and CNI plugins still running; the pod is rolled back.
  podSandboxId: await runSandbox(ctx.sandboxDeps, req, call.signal),
});
