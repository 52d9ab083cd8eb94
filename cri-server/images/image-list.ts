// ListImages: every image, or only the one the filter's image reference names; pinned per image.pinned_images.
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ListImagesRequest, ListImagesResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import type { ImageService } from "../../image-service/image-service.ts";
import { toCriImage } from "./to-cri-image.ts";

export async function imageList(ctx: { images: ImageService; config?: { image: { pinned_images: string[] } } }, req: ListImagesRequest): Promise<MessageInitShape<typeof ListImagesResponseSchema>> {
  const filter = req.filter?.image?.image || undefined;
  const pinned = ctx.config?.image.pinned_images ?? [];
  return { images: ctx.images.list(filter).map((img) => toCriImage(img, pinned)) };
}
