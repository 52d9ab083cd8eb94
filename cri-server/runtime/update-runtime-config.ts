import type { UpdateRuntimeConfigRequestSchema, UpdateRuntimeConfigResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import { parsePodCidr, savePodCidr } from "../network/pod-cidr.ts";
import type { UnaryImpl } from "../rpc.ts";

/**
 * Stores the pod CIDR kubelet pushes (crash-safe, under root) and hands it to CNI as the
 * ipRanges capability of later pods; an empty request changes nothing.
 */
export const updateRuntimeConfig: UnaryImpl<typeof UpdateRuntimeConfigRequestSchema, typeof UpdateRuntimeConfigResponseSchema> = async (ctx, req) => {
  const cidr = req.runtimeConfig?.networkConfig?.podCidr ?? "";
  if (cidr === "") return {};
  parsePodCidr(cidr);
  if (ctx.network.podCidr === cidr) return {};
  await savePodCidr(ctx.config.root, cidr);
  ctx.log.info("pod cidr updated", { pod_cidr: cidr, previous: ctx.network.podCidr });
  ctx.network.podCidr = cidr;
  return {};
};
