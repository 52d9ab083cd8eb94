import type { StreamContainersRequestSchema, StreamContainersResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import type { ServerStreamImpl } from "../rpc.ts";
import { listContainerRecords } from "./container-list.ts";
import { toContainer } from "./container-view.ts";
import { writeChunks } from "./stream-chunks.ts";

/** StreamContainers: ListContainers, streamed in chunks. */
export const streamContainers: ServerStreamImpl<typeof StreamContainersRequestSchema, typeof StreamContainersResponseSchema> = async (ctx, req, call) => {
  const containers = listContainerRecords(ctx, req.filter).map(toContainer);
  await writeChunks(containers, (chunk) => call.write({ containers: chunk }));
};
