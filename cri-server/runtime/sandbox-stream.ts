import { create } from "@bufbuild/protobuf";
import { ListPodSandboxRequestSchema, type StreamPodSandboxesRequestSchema, type StreamPodSandboxesResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import type { ServerStreamImpl } from "../rpc.ts";
import { listPodSandbox } from "./sandbox-list.ts";
import { writeChunks } from "./stream-chunks.ts";

/** StreamPodSandboxes: ListPodSandbox, streamed in chunks. */
export const streamPodSandboxes: ServerStreamImpl<typeof StreamPodSandboxesRequestSchema, typeof StreamPodSandboxesResponseSchema> = async (ctx, req, call) => {
  const { items = [] } = await listPodSandbox(ctx, create(ListPodSandboxRequestSchema, { filter: req.filter }), call);
  await writeChunks(items, (podSandboxes) => call.write({ podSandboxes }));
};
