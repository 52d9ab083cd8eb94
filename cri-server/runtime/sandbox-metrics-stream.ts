import { create } from "@bufbuild/protobuf";
import { ListPodSandboxMetricsRequestSchema, type StreamPodSandboxMetricsRequestSchema, type StreamPodSandboxMetricsResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import type { ServerStreamImpl } from "../rpc.ts";
import { listPodSandboxMetrics } from "./sandbox-metrics-list.ts";
import { writeChunks } from "./stream-chunks.ts";

/** StreamPodSandboxMetrics: ListPodSandboxMetrics, streamed in chunks. */
export const streamPodSandboxMetrics: ServerStreamImpl<typeof StreamPodSandboxMetricsRequestSchema, typeof StreamPodSandboxMetricsResponseSchema> = async (ctx, _req, call) => {
  const { podMetrics = [] } = await listPodSandboxMetrics(ctx, create(ListPodSandboxMetricsRequestSchema, {}), call);
  await writeChunks(podMetrics, (podSandboxMetrics) => call.write({ podSandboxMetrics }));
};
