import { create } from "@bufbuild/protobuf";
import { ListContainersRequestSchema, type StreamContainersRequestSchema, type StreamContainersResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import type { ServerStreamImpl } from "../rpc.ts";
import { listContainers } from "./container-list.ts";
import { writeChunks } from "./stream-chunks.ts";

/** StreamContainers: ListContainers, streamed in chunks. */
export const streamContainers: ServerStreamImpl<typeof StreamContainersRequestSchema, typeof StreamContainersResponseSchema> = async (ctx, req, call) => {
  const { containers = [] } = await listContainers(ctx, create(ListContainersRequestSchema, { filter: req.filter }), call);
  await writeChunks(containers, (chunk) => call.write({ containers: chunk }));
};
