// Mounts berth prepares for a container before the OCI runtime sees its spec, where the
// runtime cannot make them itself (runc 1.1 makes no idmapped mounts):
//  - in a pod with its own user namespace: the rootfs as an overlay over idmapped image
//    layers (the upper directory owned by the host id of the container's root), and every
//    bind mount (volumes, /etc/hosts, resolv.conf, hostname, /dev/shm, termination log)
//    as an idmapped clone, so files appear inside with the ownership they have on the host;
//  - recursive read-only volumes where the runtime lacks "rro": a clone with every mount read-only.
// They live in <state>/userns/containers/<id>. The bind clones are released (unmounted) as soon
// as the runtime has created the container, which holds its own copies; the rootfs stays until
// the container is removed. On failure, everything is unmounted; the start-up sweep removes
// whatever belongs to no known container.
import { chmod, chown, mkdir, readdir } from "node:fs/promises";
import { join } from "node:path";
import { failedPrecondition, internal } from "../foundation/errdefs.ts";
import { describeFailure, runCommand } from "../foundation/run-command.ts";
import type { Spec } from "../bundle-spec/types.ts";
import { bindClone, containerMountsDir, detach, MOUNT_HELPER_TIMEOUT_MS, removeUnder, usernsRoot } from "./mount-helper.ts";

/** The kernel takes one page of mount options. */
const MOUNT_DATA_LIMIT = 4095;

export interface ContainerUserns {
  /** The pod's pinned user namespace. */
  path: string;
  /** Host ids of the container's uid 0 and gid 0. */
  hostUid: number;
  hostGid: number;
}

export interface OverlayRootfs {
  /** The snapshot store's root: layer dirs are given relative to it. */
  snapshotRoot: string;
  /** Lower dirs relative to snapshotRoot, top first. */
  lowers: string[];
  upper: string;
  work: string;
  /** Where the image service mounted the plain overlay (unmounted here: one upper serves one overlay). */
  mountedAt: string;
}

export interface PrepareInput {
  helper: string;
  stateDir: string;
  containerId: string;
  spec: Spec;
  userns?: ContainerUserns;
  rootfs?: OverlayRootfs;
  /** The runtime lacks the "rro" mount option: berth makes recursive read-only clones. */
  rroByBerth: boolean;
}

const isBind = (m: { type?: string; options?: string[] }) => m.type === "bind" || !!m.options?.some((o) => o === "bind" || o === "rbind");

/** Whether prepareContainerMounts has anything to do for this spec. */
export function needsPreparedMounts(i: Pick<PrepareInput, "spec" | "userns" | "rroByBerth">): boolean {
  if (i.userns) return true;
  return i.rroByBerth && (i.spec.mounts ?? []).some((m) => isBind(m) && m.options?.includes("rro"));
}

/**
 * Prepares the mounts and rewrites `spec` to use them (root.path, mount sources). Returns the
 * directory holding them (to pass to releaseContainerMounts), or "" when nothing was needed.
 * On failure everything prepared is unmounted again.
 */
export async function prepareContainerMounts(i: PrepareInput): Promise<string> {
  if (!needsPreparedMounts(i)) return "";
  const dir = containerMountsDir(i.stateDir, i.containerId);
  await mkdir(join(usernsRoot(i.stateDir), "containers"), { recursive: true, mode: 0o711 });
  await chmod(usernsRoot(i.stateDir), 0o711);
  await chmod(join(usernsRoot(i.stateDir), "containers"), 0o711);
  await mkdir(dir, { mode: 0o700 });
  try {
    // Only the container's root (and host root) may enter: the clones show host files with shifted owners.
    if (i.userns) await chown(dir, i.userns.hostUid, i.userns.hostGid);
    const mounts = i.spec.mounts ?? [];
    for (let n = 0; n < mounts.length; n++) {
      const m = mounts[n]!;
      if (!isBind(m) || !m.source) continue;
      const rro = i.rroByBerth && !!m.options?.includes("rro");
      if (!i.userns && !rro) continue;
      const target = join(dir, `m${n}`);
      await bindClone(i.helper, m.source, target, { ...(i.userns ? { userns: i.userns.path } : {}), mode: rro ? "rro" : "rw" });
      m.source = target;
      if (rro) m.options = m.options!.map((o) => (o === "rro" ? "ro" : o));
    }
    if (i.userns && i.rootfs) {
      i.spec.root = { ...i.spec.root, path: await idmappedRootfs(i.helper, dir, i.userns, i.rootfs) };
    }
    return dir;
  } catch (err) {
    await removeUnder(i.helper, dir).catch(() => {});
    throw err;
  }
}

/** The rootfs of a user-namespaced container: overlayfs over an idmapped clone of the layer store. */
async function idmappedRootfs(helper: string, dir: string, u: ContainerUserns, r: OverlayRootfs): Promise<string> {
  for (const p of [r.upper, r.work, ...r.lowers]) {
    if (/[,:\\\n]/.test(p)) throw failedPrecondition(`rootfs layer path ${JSON.stringify(p)} contains a character overlayfs options cannot carry`);
  }
  const data = `lowerdir=${r.lowers.join(":")},upperdir=${r.upper},workdir=${r.work}`;
  if (data.length > MOUNT_DATA_LIMIT) throw failedPrecondition(`image has ${r.lowers.length} layers, more than an idmapped overlay mount can take (options of ${data.length} bytes, limit ${MOUNT_DATA_LIMIT})`);
  await detach(helper, r.mountedAt);
  // The writable layer belongs to the container's root; lower files keep their owners through the idmap.
  if ((await readdir(r.upper)).length === 0) await chown(r.upper, u.hostUid, u.hostGid);
  const layers = join(dir, "layers");
  const rootfs = join(dir, "rootfs");
  await bindClone(helper, r.snapshotRoot, layers, { userns: u.path, mode: "ro" });
  await mkdir(rootfs, { mode: 0o755 });
  const res = await runCommand("mount", ["-t", "overlay", "overlay", "-o", data, rootfs], { cwd: layers, timeoutMs: MOUNT_HELPER_TIMEOUT_MS });
  // overlayfs keeps private clones of its layers: the layer clone is not needed once it is mounted.
  await detach(helper, layers).catch(() => {});
  if (res.code !== 0) throw internal(`cannot mount the idmapped rootfs overlay at ${rootfs}: ${describeFailure(res)}`);
  return rootfs;
}

/** Unmounts and removes everything prepared for a container (idempotent; "" is a no-op). */
export async function releaseContainerMounts(helper: string, dir: string): Promise<void> {
  if (dir) await removeUnder(helper, dir);
}

/**
 * After the runtime created the container: unmounts the bind clones (the container holds its own
 * copies), keeping the rootfs, where `runc exec` starts its processes.
 */
export async function releaseBindClones(helper: string, dir: string): Promise<void> {
  if (!dir) return;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (/^m\d+$/.test(name)) await removeUnder(helper, join(dir, name));
  }
}
