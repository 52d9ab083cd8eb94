import { create } from "@bufbuild/protobuf";
import { ListContainerStatsRequestSchema, type StreamContainerStatsRequestSchema, type StreamContainerStatsResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import type { ServerStreamImpl } from "../rpc.ts";
import { listContainerStats } from "./container-stats-list.ts";
import { writeChunks } from "./stream-chunks.ts";

/** StreamContainerStats: ListContainerStats, streamed in chunks. */
export const streamContainerStats: ServerStreamImpl<typeof StreamContainerStatsRequestSchema, typeof StreamContainerStatsResponseSchema> = async (ctx, req, call) => {
  const { stats = [] } = await listContainerStats(ctx, create(ListContainerStatsRequestSchema, { filter: req.filter }), call);
  await writeChunks(stats, (containerStats) => call.write({ containerStats }));
};
