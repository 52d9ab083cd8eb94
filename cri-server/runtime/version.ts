import type { VersionRequestSchema, VersionResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import type { UnaryImpl } from "../rpc.ts";

/** The CRI API version berth speaks. Version is answered whatever version the client names (CRI: "kubelet's version"). */
export const CRI_API_VERSION = "v1";

export const version: UnaryImpl<typeof VersionRequestSchema, typeof VersionResponseSchema> = async (ctx) => ({
  version: "0.1.0",
  runtimeName: "berth",
  runtimeVersion: ctx.version,
  runtimeApiVersion: CRI_API_VERSION,
});
