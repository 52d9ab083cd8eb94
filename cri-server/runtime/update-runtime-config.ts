import type { UpdateRuntimeConfigRequestSchema, UpdateRuntimeConfigResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import { parsePodCidr, savePodCidr } from "../network/pod-cidr.ts";
import type { UnaryImpl } from "../rpc.ts";

/** Validates one CIDR or a comma-separated dual-stack pair, as kubelet sends it. */
export function checkPodCidr(value: string): void {
  parsePodCidr(value);
}

/**
 * Stores the pod CIDR kubelet pushes (crash-safe, under root) and hands it to CNI as the
 * ipRanges capability of later pods; an empty request changes nothing.
 */
export const updateRuntimeConfig: UnaryImpl<typeof UpdateRuntimeConfigRequestSchema, typeof UpdateRuntimeConfigResponseSchema> = async (ctx, req) => {
  const cidr = req.runtimeConfig?.networkConfig?.podCidr ?? "";
  if (cidr === "") return {};
  checkPodCidr(cidr);
  if (ctx.settings.podCidr === cidr) return {};
  await savePodCidr(ctx.config.root, cidr);
  ctx.log.info("pod cidr updated", { pod_cidr: cidr, previous: ctx.settings.podCidr });
  ctx.settings.podCidr = cidr;
  ctx.network.podCidr = cidr;
  return {};
};
