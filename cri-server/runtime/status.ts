import type { StatusRequestSchema, StatusResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import type { UnaryImpl } from "../rpc.ts";
import { binaryStatus } from "../../oci-runtime/foundation/executable.ts";

/**
 * RuntimeReady and NetworkReady conditions. RuntimeReady is false only when the DEFAULT
 * handler's runtime (or conmon) cannot run: a pod naming another handler whose binary is
 * missing is refused by RunPodSandbox (FAILED_PRECONDITION), as containerd fails only the
 * pods that use such a handler. `verbose` adds the effective config and runtime settings
 * under info["config"], as containerd does, under info["imageTrust"] whether image signatures
 * are verified, and under info["runtimeHandlers"] each handler's
 * binary, whether it can run, and why not.
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
    res.info["config"] = JSON.stringify({ ...ctx.config, configPath: ctx.configPath, podCidr: ctx.network.podCidr });
    const img = ctx.config.image;
    res.info["imageTrust"] = JSON.stringify({
      verification: img.signature_policy || img.signature_policy_dir ? "on" : "off (image.signature_policy is unset)",
      policy: img.signature_policy, policyDir: img.signature_policy_dir, registriesD: img.registries_d,
    });
    res.info["runtimeHandlers"] = JSON.stringify(Object.fromEntries(Object.entries(ctx.config.runtime.handlers).map(([name, h]) => {
      const st = binaryStatus(h.binary);
      return [name, { binary: st.path, ready: st.ok, ...(st.ok ? {} : { message: `binary ${h.binary} ${st.problem}` }), default: name === ctx.config.runtime.default_handler }];
    })));
  }
  return res;
};
