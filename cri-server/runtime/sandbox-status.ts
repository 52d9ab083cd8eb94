import { toJson } from "@bufbuild/protobuf";
import { PodSandboxConfigSchema, type PodSandboxStatusRequestSchema, type PodSandboxStatusResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import type { UnaryImpl } from "../rpc.ts";
import { nowNs } from "../../oci-runtime/foundation/clock.ts";
import { toPodSandboxStatus } from "./sandbox-view.ts";

/** PodSandboxStatus; `verbose` adds the pid (0: no infra process), the ipc/uts pins, netns, runtime details and config under info["info"]. */
export const podSandboxStatus: UnaryImpl<typeof PodSandboxStatusRequestSchema, typeof PodSandboxStatusResponseSchema> = async (ctx, req) => {
  const rec = ctx.sandboxes.get(req.podSandboxId);
  const info: Record<string, string> = {};
  if (req.verbose) {
    info["info"] = JSON.stringify({
      pid: rec.infra.pid,
      ...(rec.pins ? { pins: rec.pins } : {}),
      netnsPath: rec.netnsPath,
      podDir: rec.podDir,
      bundle: rec.infra.bundle,
      cgroupsPath: rec.infra.cgroupsPath,
      runtimeHandler: rec.runtimeHandler,
      config: toJson(PodSandboxConfigSchema, ctx.sandboxes.podConfig(rec)),
      reason: rec.reason,
    });
  }
  return {
    status: toPodSandboxStatus(rec, await ctx.sandboxes.liveState(rec)),
    info,
    containersStatuses: [],
    timestamp: nowNs(),
  };
};
