// ImageStatus: an unknown image is an empty response, not an error (CRI api.proto:
// "If the image isn't present, returns a response with ImageStatusResponse.Image set to nil").
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ImageStatusRequest, ImageStatusResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import { invalidArgument } from "../../oci-runtime/foundation/errdefs.ts";
import type { ImageService } from "../../image-service/image-service.ts";
import { toCriImage } from "./to-cri-image.ts";

export async function imageStatus(ctx: { images: ImageService; config?: { image: { pinned_images: string[] } } }, req: ImageStatusRequest): Promise<MessageInitShape<typeof ImageStatusResponseSchema>> {
  const ref = req.image?.image ?? "";
  if (!ref) throw invalidArgument("image reference is required");
  const img = ctx.images.get(ref);
  if (!img) return {};
  const image = toCriImage(img, ctx.config?.image.pinned_images ?? []);
  const info: Record<string, string> = {};
  if (req.verbose) {
    info.info = JSON.stringify({
      id: img.id, chainIDs: img.chainIds, manifestDigest: img.manifestDigest, pinned: image.pinned, imageSpec: img.configFile,
    });
  }
  return { image, info };
}
