import { CgroupDriver, type RuntimeConfigRequestSchema, type RuntimeConfigResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import type { UnaryImpl } from "../rpc.ts";

/** berth drives cgroups directly through the cgroupfs driver. */
export const runtimeConfig: UnaryImpl<typeof RuntimeConfigRequestSchema, typeof RuntimeConfigResponseSchema> = async () => ({
  linux: { cgroupDriver: CgroupDriver.CGROUPFS },
});
