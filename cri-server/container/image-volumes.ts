// CRI Mount.image (KEP-4639 image volumes) for CreateContainer: each image mount's layers are
// mounted read-only (image-service/volumes), its image_sub_path resolved inside, and the
// container gets a bind mount of that with ro,nosuid,nodev,noexec. In a pod with its own user
// namespace the overlay is built over idmapped layers, in a directory the container's root can
// reach, and the bind mount is added after berth's own idmapped clones (overlayfs cannot be
// idmapped again).
import { chmod, chown, mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { clone } from "@bufbuild/protobuf";
import { ContainerConfigSchema, type ContainerConfig } from "../../proto/gen/runtime/v1/api_pb.js";
import type { ImageService } from "../../image-service/image-service.ts";
import { IMAGE_VOLUME_FLAGS, resolveSubPath, type IdmapLayers } from "../../image-service/volumes/image-volume.ts";
import { invalidArgument, notFound } from "../../oci-runtime/foundation/errdefs.ts";
import type { Cleanup } from "../../oci-runtime/foundation/cleanup.ts";
import { bindClone, detach, usernsRoot } from "../../oci-runtime/mounts/mount-helper.ts";
import type { Mount, Spec } from "../../oci-runtime/bundle-spec/types.ts";

/** At most this many image volumes per container. */
export const MAX_IMAGE_VOLUMES = 64;

/** Where a container's image volumes are mounted on the host: in its bundle, or (user-namespaced pods) where its root can reach. */
export const imageVolumeDir = (bundle: string) => join(bundle, "image-volumes");
export const usernsImageVolumeDir = (stateDir: string, id: string) => join(usernsRoot(stateDir), "volumes", id);
export const imageVolumeDirs = (stateDir: string, bundle: string, id: string) => [imageVolumeDir(bundle), usernsImageVolumeDir(stateDir, id)];

/** Checks the image mounts before anything is created: each image exists (NOT_FOUND naming it), the count is bounded. */
export function checkImageMounts(images: ImageService, cfg: ContainerConfig): void {
  const mounts = cfg.mounts.filter((m) => m.image?.image);
  if (mounts.length > MAX_IMAGE_VOLUMES) throw invalidArgument(`config.mounts: ${mounts.length} image volumes, more than the limit of ${MAX_IMAGE_VOLUMES}`);
  for (const m of mounts) {
    if (m.hostPath) throw invalidArgument(`mount ${JSON.stringify(m.containerPath)}: host_path ${JSON.stringify(m.hostPath)} and image ${JSON.stringify(m.image!.image)} are exclusive`);
    if (!m.containerPath.startsWith("/") || m.containerPath.split("/").includes("..")) {
      throw invalidArgument(`mount container path ${JSON.stringify(m.containerPath)} of an image volume must be absolute, without ".."`);
    }
    if (!images.get(m.image!.image)) throw notFound(`image ${JSON.stringify(m.image!.image)} for the image volume at ${JSON.stringify(m.containerPath)} not found (pull it first)`);
  }
}

export interface ImageVolumeMount { containerPath: string; source: string }

export interface ImageVolumeOptions {
  stateDir: string;
  /** berth-mount and the pod's pinned user namespace, for a pod with its own user namespace. */
  userns?: { helper: string; path: string; hostUid: number; hostGid: number };
}

/**
 * Mounts the image volumes of `cfg` (undone through `cleanup`). Returns `cfg` without its image
 * mounts (for the spec builder) and the bind mounts to add with addImageVolumeMounts().
 */
export async function mountImageVolumes(images: ImageService, id: string, bundle: string, cfg: ContainerConfig, cleanup: Cleanup, o: ImageVolumeOptions): Promise<{ cfg: ContainerConfig; mounts: ImageVolumeMount[] }> {
  if (!cfg.mounts.some((m) => m.image?.image)) return { cfg, mounts: [] };
  const dir = o.userns ? usernsImageVolumeDir(o.stateDir, id) : imageVolumeDir(bundle);
  cleanup.add("image volumes", async () => {
    await images.removeImageVolumes(id, [dir]);
    if (o.userns) await rm(dir, { recursive: true, force: true });
  });
  if (o.userns) {
    // volumes/ lets anyone pass (0711); <id> is the pod root's alone (0700, its mapped host ids),
    // as userns/containers/<id> is: nobody else may list or read the image's files there.
    await mkdir(join(usernsRoot(o.stateDir), "volumes"), { recursive: true, mode: 0o711 });
    await chmod(usernsRoot(o.stateDir), 0o711);
    await chmod(join(usernsRoot(o.stateDir), "volumes"), 0o711);
    await mkdir(dir, { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => { if (err.code !== "EEXIST") throw err; });
    await chmod(dir, 0o700);
    await chown(dir, o.userns.hostUid, o.userns.hostGid);
  }
  const idmap: IdmapLayers | undefined = o.userns ? {
    clone: (source, target) => bindClone(o.userns!.helper, source, target, { userns: o.userns!.path, mode: "ro" }),
    release: (target) => detach(o.userns!.helper, target),
  } : undefined;
  const mounts: ImageVolumeMount[] = [];
  for (const [i, m] of cfg.mounts.entries()) {
    if (!m.image?.image) continue;
    const target = join(dir, String(i));
    await images.mountImageVolume(id, i, m.image.image, target, idmap);
    const source = await resolveSubPath(target, m.imageSubPath, `mount ${JSON.stringify(m.containerPath)}: image_sub_path`, m.image.image);
    mounts.push({ containerPath: m.containerPath, source });
  }
  const out = clone(ContainerConfigSchema, cfg);
  out.mounts = out.mounts.filter((m) => !m.image?.image);
  return { cfg: out, mounts };
}

/**
 * Adds the image volumes' bind mounts (ro,nosuid,nodev,noexec) to `spec`, each before the
 * first mount below its path so parents are mounted before children.
 */
export function addImageVolumeMounts(spec: Spec, volumes: ImageVolumeMount[]): void {
  const list = spec.mounts ?? [];
  for (const v of volumes) {
    const dest = v.containerPath.replace(/\/+$/, "") || "/";
    const m: Mount = { destination: dest, type: "bind", source: v.source, options: ["rbind", "rprivate", ...IMAGE_VOLUME_FLAGS] };
    const at = list.findIndex((x) => x.destination.startsWith(`${dest}/`));
    if (at < 0) list.push(m);
    else list.splice(at, 0, m);
  }
  spec.mounts = list;
}
