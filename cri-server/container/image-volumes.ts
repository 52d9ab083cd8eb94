// CRI Mount.image (KEP-4639 image volumes) for CreateContainer: each image mount's layers are
// mounted read-only under <bundle>/image-volumes/<index> (image-service/volumes), its
// image_sub_path resolved inside, and the container gets a bind mount of that with
// ro,nosuid,nodev,noexec.
import { join } from "node:path";
import { clone } from "@bufbuild/protobuf";
import { ContainerConfigSchema, type ContainerConfig } from "../../proto/gen/runtime/v1/api_pb.js";
import type { ImageService } from "../../image-service/image-service.ts";
import { IMAGE_VOLUME_FLAGS, resolveSubPath } from "../../image-service/volumes/image-volume.ts";
import { invalidArgument, notFound } from "../../oci-runtime/foundation/errdefs.ts";
import type { Cleanup } from "../../oci-runtime/foundation/cleanup.ts";
import type { Spec } from "../../oci-runtime/spec/types.ts";

/** At most this many image volumes per container. */
export const MAX_IMAGE_VOLUMES = 64;

export const imageVolumeDir = (bundle: string) => join(bundle, "image-volumes");

/** Checks the image mounts before anything is created: each image exists (NOT_FOUND naming it), the count is bounded. */
export function checkImageMounts(images: ImageService, cfg: ContainerConfig): void {
  const mounts = cfg.mounts.filter((m) => m.image?.image);
  if (mounts.length > MAX_IMAGE_VOLUMES) throw invalidArgument(`config.mounts: ${mounts.length} image volumes, more than the limit of ${MAX_IMAGE_VOLUMES}`);
  for (const m of mounts) {
    if (m.hostPath) throw invalidArgument(`mount ${JSON.stringify(m.containerPath)}: host_path ${JSON.stringify(m.hostPath)} and image ${JSON.stringify(m.image!.image)} are exclusive`);
    if (!images.get(m.image!.image)) throw notFound(`image ${JSON.stringify(m.image!.image)} for the image volume at ${JSON.stringify(m.containerPath)} not found (pull it first)`);
  }
}

/**
 * Mounts the image volumes of `cfg` (undone through `cleanup`) and returns a copy of `cfg`
 * whose image mounts are read-only host-path mounts of them, and those host paths.
 */
export async function mountImageVolumes(images: ImageService, id: string, bundle: string, cfg: ContainerConfig, cleanup: Cleanup): Promise<{ cfg: ContainerConfig; sources: Set<string> }> {
  const sources = new Set<string>();
  if (!cfg.mounts.some((m) => m.image?.image)) return { cfg, sources };
  const out = clone(ContainerConfigSchema, cfg);
  const dir = imageVolumeDir(bundle);
  cleanup.add("image volumes", () => images.removeImageVolumes(id, dir));
  for (const [i, m] of out.mounts.entries()) {
    if (!m.image?.image) continue;
    const target = join(dir, String(i));
    await images.mountImageVolume(id, i, m.image.image, target);
    const source = await resolveSubPath(target, m.imageSubPath, `mount ${JSON.stringify(m.containerPath)}: image_sub_path`, m.image.image);
    sources.add(source);
    m.hostPath = source;
    m.readonly = true;
    m.recursiveReadOnly = false;
    m.propagation = 0;
    m.image = undefined;
    m.imageSubPath = "";
  }
  return { cfg: out, sources };
}

/** Adds nosuid, nodev and noexec to the container's bind mounts of image volumes. */
export function hardenImageVolumeMounts(spec: Spec, sources: Set<string>): void {
  for (const m of spec.mounts ?? []) {
    if (m.type !== "bind" || !sources.has(m.source ?? "")) continue;
    const opts = (m.options ?? []).filter((o) => o !== "rw");
    for (const f of IMAGE_VOLUME_FLAGS) if (!opts.includes(f)) opts.push(f);
    m.options = opts;
  }
}
