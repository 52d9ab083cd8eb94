// Converts an image-service Image to the CRI Image message.
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ImageSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import type { Image } from "../../image-service/image-service.ts";
import { matchesPinned } from "../../image-service/images/pinned.ts";

/** `pinnedGlobs` (config image.pinned_images) mark matching images pinned, beside the image's own flag. */
export function toCriImage(img: Image, pinnedGlobs: readonly string[] = []): MessageInitShape<typeof ImageSchema> {
  return {
    id: img.id,
    repoTags: img.repoTags,
    repoDigests: img.repoDigests,
    size: BigInt(img.size),
    // kubelet prefers uid when set; a named user travels in username.
    ...(img.uid !== undefined ? { uid: { value: BigInt(img.uid) } } : {}),
    username: img.username,
    spec: { image: img.id },
    pinned: img.pinned || matchesPinned(img, pinnedGlobs),
  };
}
