import { isIP } from "node:net";
import type { UpdateRuntimeConfigRequestSchema, UpdateRuntimeConfigResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import { invalidArgument } from "../../oci-runtime/foundation/errdefs.ts";
import type { UnaryImpl } from "../rpc.ts";

/** Validates one CIDR or a comma-separated dual-stack pair, as kubelet sends it. */
export function checkPodCidr(value: string): void {
  for (const cidr of value.split(",").map((s) => s.trim())) {
    const [addr, bits, ...rest] = cidr.split("/");
    const family = isIP(addr ?? "");
    const n = Number(bits);
    if (rest.length || !family || !/^\d+$/.test(bits ?? "") || n > (family === 4 ? 32 : 128)) {
      throw invalidArgument(`runtime_config.network_config.pod_cidr: invalid CIDR ${JSON.stringify(cidr)}`);
    }
  }
}

/** Stores the pod CIDR kubelet pushes; an empty request changes nothing. */
export const updateRuntimeConfig: UnaryImpl<typeof UpdateRuntimeConfigRequestSchema, typeof UpdateRuntimeConfigResponseSchema> = async (ctx, req) => {
  const cidr = req.runtimeConfig?.networkConfig?.podCidr ?? "";
  if (cidr === "") return {};
  checkPodCidr(cidr);
  if (ctx.settings.podCidr !== cidr) ctx.log.info("pod cidr updated", { pod_cidr: cidr, previous: ctx.settings.podCidr });
  ctx.settings.podCidr = cidr;
  return {};
};
