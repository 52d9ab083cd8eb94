import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { ContainerStatusRequestSchema, ContainerStatusResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import type { UnaryImpl } from "../rpc.ts";
import { toContainerStatus } from "./container-view.ts";
import { isRunning } from "../container/state.ts";

/** ContainerStatus; `verbose` adds the pid, sandbox id and the OCI spec under info["info"]. */
export const containerStatus: UnaryImpl<typeof ContainerStatusRequestSchema, typeof ContainerStatusResponseSchema> = async (ctx, req) => {
  const rec = await ctx.containers.refresh(ctx.containers.get(req.containerId).id);
  const info: Record<string, string> = {};
  if (req.verbose) {
    let runtimeSpec: unknown;
    try { runtimeSpec = JSON.parse(await readFile(join(rec.bundle, "config.json"), "utf8")); } catch { /* removed bundle */ }
    info["info"] = JSON.stringify({
      pid: isRunning(rec.state) ? rec.pid : 0,
      sandboxID: rec.sandboxId,
      runtimeHandler: rec.runtimeHandler,
      bundle: rec.bundle,
      cgroupsPath: rec.cgroupsPath,
      conmonPid: rec.conmonPid,
      runtimeSpec,
    });
  }
  return { status: toContainerStatus(rec), info };
};
