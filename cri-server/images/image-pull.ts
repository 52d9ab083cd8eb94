// PullImage: pulls the image (with the request's AuthConfig) and answers its id. The pod
// namespace from sandbox_config selects a per-namespace signature policy.
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { PullImageRequest, PullImageResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import { invalidArgument } from "../../oci-runtime/foundation/errdefs.ts";
import type { ImageService, PullAuth } from "../../image-service/image-service.ts";
import { checkNamespace } from "../../image-service/trust/trust.ts";

export async function imagePull(ctx: { images: ImageService }, req: PullImageRequest): Promise<MessageInitShape<typeof PullImageResponseSchema>> {
  const ref = req.image?.image ?? "";
  if (!ref) throw invalidArgument("image reference is required");
  const a = req.auth;
  const auth: PullAuth | undefined = a
    ? { username: a.username, password: a.password, auth: a.auth, identityToken: a.identityToken, registryToken: a.registryToken, serverAddress: a.serverAddress }
    : undefined;
  const namespace = req.sandboxConfig?.metadata?.namespace ?? "";
  if (namespace) checkNamespace(namespace);
  const { imageRef } = await ctx.images.pull(ref, auth, namespace ? { namespace } : {});
  return { imageRef };
}
