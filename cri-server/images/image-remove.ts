// RemoveImage: by id, tag or digest. Removing one tag of several only untags. CRI api.proto:
// "This call is idempotent, and must not return an error if the image has already been removed."
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { RemoveImageRequest, RemoveImageResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import { invalidArgument } from "../../oci-runtime/foundation/errdefs.ts";
import type { ImageService } from "../../image-service/image-service.ts";

export async function imageRemove(ctx: { images: ImageService }, req: RemoveImageRequest): Promise<MessageInitShape<typeof RemoveImageResponseSchema>> {
  const ref = req.image?.image ?? "";
  if (!ref) throw invalidArgument("image reference is required");
  await ctx.images.remove(ref);
  return {};
}
