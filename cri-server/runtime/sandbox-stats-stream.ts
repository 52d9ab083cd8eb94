import { create } from "@bufbuild/protobuf";
import { ListPodSandboxStatsRequestSchema, type StreamPodSandboxStatsRequestSchema, type StreamPodSandboxStatsResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import type { ServerStreamImpl } from "../rpc.ts";
import { listPodSandboxStats } from "./sandbox-stats-list.ts";
import { writeChunks } from "./stream-chunks.ts";

/** StreamPodSandboxStats: ListPodSandboxStats, streamed in chunks. */
export const streamPodSandboxStats: ServerStreamImpl<typeof StreamPodSandboxStatsRequestSchema, typeof StreamPodSandboxStatsResponseSchema> = async (ctx, req, call) => {
  const { stats = [] } = await listPodSandboxStats(ctx, create(ListPodSandboxStatsRequestSchema, { filter: req.filter }), call);
  await writeChunks(stats, (podSandboxStats) => call.write({ podSandboxStats }));
};
