// ImageFsInfo: bytes and inodes used by the image filesystem (content and snapshots under root).
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ImageFsInfoRequest, ImageFsInfoResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import type { ImageService } from "../../image-service/image-service.ts";

export async function imageFsInfo(ctx: { images: ImageService }, _req: ImageFsInfoRequest): Promise<MessageInitShape<typeof ImageFsInfoResponseSchema>> {
  const fs = await ctx.images.fsInfo();
  return {
    imageFilesystems: [{
      timestamp: BigInt(fs.timestamp) * 1_000_000n,
      fsId: { mountpoint: fs.mountpoint },
      usedBytes: { value: BigInt(fs.usedBytes) },
      inodesUsed: { value: BigInt(fs.inodesUsed) },
    }],
    containerFilesystems: [],
  };
}
