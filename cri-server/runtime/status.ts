import type { StatusRequestSchema, StatusResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import type { UnaryImpl } from "../rpc.ts";

/**
 * RuntimeReady and NetworkReady conditions. `verbose` adds the effective config and
 * runtime settings under info["config"], as containerd does.
 */
export const status: UnaryImpl<typeof StatusRequestSchema, typeof StatusResponseSchema> = async (ctx, req) => {
  const runtime = await ctx.runtimeReady();
  const network = ctx.networkReady();
  const res = {
    status: {
      conditions: [
        { type: "RuntimeReady", status: runtime.ready, reason: runtime.reason ?? "", message: runtime.message ?? "" },
        { type: "NetworkReady", status: network.ready, reason: network.reason ?? "", message: network.message ?? "" },
      ],
    },
    runtimeHandlers: ctx.handlerFeatures(),
    features: { supplementalGroupsPolicy: true, userNamespacesHostNetwork: false, mountOptions: false },
    info: {} as Record<string, string>,
  };
  if (req.verbose) {
    res.info["config"] = JSON.stringify({ ...ctx.config, configPath: ctx.configPath, podCidr: ctx.settings.podCidr });
  }
  return res;
};
