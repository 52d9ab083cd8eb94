// Image volumes (KEP-4639): an image's layers mounted read-only, the way kubelet's OCI
// VolumeSource expects: an overlay of the layer snapshots with no upper layer, mounted
// ro,nosuid,nodev,noexec; an image_sub_path inside it resolved without leaving it.
import { mkdir, realpath, rm, stat } from "node:fs/promises";
import path from "node:path";
import { failedPrecondition, internal, invalidArgument } from "../../oci-runtime/foundation/errdefs.ts";
import { findMount } from "../../oci-runtime/foundation/mountinfo.ts";
import { runCommand } from "../../oci-runtime/foundation/run-command.ts";

/** The flags of every image volume mount, on the host and in the container (KEP-4639: ro and noexec). */
export const IMAGE_VOLUME_FLAGS = ["ro", "nosuid", "nodev", "noexec"] as const;
/** Lease keys of image volumes: `volume-<owner>-<index>`. */
export const volumeLeaseKey = (owner: string, index: number) => `volume-${owner}-${index}`;
export const volumeLeasePrefix = (owner: string) => `volume-${owner}-`;
/** Page-size limit of mount(2) data, less a margin. */
const MOUNT_DATA_LIMIT = 4096 - 512;
const MAX_SUB_PATH = 4096;

const hex = (id: string) => id.replace(/^sha256:/, "");

async function run(cmd: string, args: string[], cwd: string, what: string): Promise<void> {
  const r = await runCommand(cmd, args, { cwd });
  if (r.spawnError) throw internal(`${what}: ${r.spawnError.message}`, r.spawnError);
  if (r.code !== 0) throw internal(`${what} failed: ${r.stderr.trim() || `exit ${r.code}`}`);
}

/**
 * Mounts the layers (chain ids, bottom first) from `snapshotRoot/<hex>/fs` read-only at
 * `target`. Overlay needs two lower dirs without an upper one, so a one-layer image gets
 * the snapshotter's empty dir below it, and an image without layers two empty dirs.
 */
export async function mountLayersReadOnly(snapshotRoot: string, chainIds: string[], target: string, idmap?: IdmapLayers): Promise<void> {
  await mkdir(target, { recursive: true, mode: idmap ? 0o711 : 0o700 });
  const flags = IMAGE_VOLUME_FLAGS.join(",");
  const lowers = [...chainIds].reverse().map((c) => `${hex(c)}/fs`);
  // overlayfs without an upper dir needs two lower dirs, and not the same one twice.
  if (lowers.length < 2) lowers.push("empty/fs");
  if (lowers.length < 2) {
    await mkdir(path.join(snapshotRoot, "empty", "fs2"), { recursive: true, mode: 0o755 });
    lowers.push("empty/fs2");
  }
  const data = `${flags},lowerdir=${lowers.join(":")}`;
  if (data.length > MOUNT_DATA_LIMIT) throw failedPrecondition(`image has ${chainIds.length} layers, more than a read-only overlay mount can take (options of ${data.length} bytes)`);
  if (!idmap) {
    await run("mount", ["-t", "overlay", "overlay", "-o", data, target], snapshotRoot, `mount image volume at ${target}`);
    return;
  }
  // A pod with its own user namespace: the overlay goes over an idmapped clone of the layer
  // store (overlayfs itself cannot be idmapped), so files keep their owners inside the pod.
  const layers = `${target}.layers`;
  await idmap.clone(snapshotRoot, layers);
  try {
    await run("mount", ["-t", "overlay", "overlay", "-o", data, target], layers, `mount idmapped image volume at ${target}`);
  } finally {
    // overlayfs keeps private references to its layers
    await idmap.release(layers).catch(() => {});
    await rm(layers, { recursive: false, force: true }).catch(() => {});
  }
}

/** How to give overlayfs layers idmapped to a pod's user namespace (berth-mount's bind clone). */
export interface IdmapLayers {
  clone(source: string, target: string): Promise<void>;
  release(target: string): Promise<void>;
}

export async function unmountVolume(target: string): Promise<void> {
  if (!(await findMount(path.resolve(target)))) return;
  await run("umount", [target], "/", `unmount image volume ${target}`).catch(async (err) => {
    if (!(await findMount(path.resolve(target)))) return;
    await run("umount", ["-l", target], "/", `unmount image volume ${target}`).catch(() => { throw err; });
  });
}

/**
 * The host path of `subPath` inside the mounted volume `root`. Refused (INVALID_ARGUMENT,
 * naming `field` and the value): an absolute path, "..", NUL, a path that does not exist, and
 * one that leaves the volume through a symlink (absolute symlinks are the image's own and
 * point outside the volume on the host). The volume is read-only, so the answer cannot change.
 */
export async function resolveSubPath(root: string, subPath: string, field: string, image: string): Promise<string> {
  if (!subPath) return root;
  const shown = JSON.stringify(subPath.slice(0, 200));
  if (subPath.length > MAX_SUB_PATH) throw invalidArgument(`${field} is longer than ${MAX_SUB_PATH} characters`);
  if (subPath.includes("\0")) throw invalidArgument(`${field} ${shown} contains NUL`);
  if (subPath.startsWith("/")) throw invalidArgument(`${field} ${shown} must be relative to the image's root`);
  if (subPath.split("/").includes("..")) throw invalidArgument(`${field} ${shown} must not contain ".."`);
  const realRoot = await realpath(root);
  let resolved: string;
  try {
    resolved = await realpath(path.join(realRoot, subPath));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR" || code === "ELOOP") throw invalidArgument(`${field} ${shown} does not exist in image ${JSON.stringify(image)}`, err);
    throw invalidArgument(`${field} ${shown} in image ${JSON.stringify(image)}: ${(err as Error).message}`, err);
  }
  if (resolved !== realRoot && !resolved.startsWith(realRoot + "/")) {
    throw invalidArgument(`${field} ${shown} leaves image ${JSON.stringify(image)} through a symlink`);
  }
  await stat(resolved);
  return resolved;
}
