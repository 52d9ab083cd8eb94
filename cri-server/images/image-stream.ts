// StreamImages: ListImages, streamed in chunks.
import { create } from "@bufbuild/protobuf";
import { ListImagesRequestSchema, type StreamImagesRequestSchema, type StreamImagesResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import type { ServerStreamImpl } from "../rpc.ts";
import { writeChunks } from "../runtime/stream-chunks.ts";
import { imageList } from "./image-list.ts";

export const streamImages: ServerStreamImpl<typeof StreamImagesRequestSchema, typeof StreamImagesResponseSchema> = async (ctx, req, call) => {
  const { images = [] } = await imageList(ctx, create(ListImagesRequestSchema, { filter: req.filter }));
  await writeChunks(images, (chunk) => call.write({ images: chunk }));
};
