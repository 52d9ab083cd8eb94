// The one model of the host's cgroup layout: v1, v2 (unified) or hybrid (v1 controllers plus a
// v2 tree), with each hierarchy's mount point and the cgroup mounted there. Spec building,
// cgroup housekeeping, conmon's cgroup and the stats reader all read it.
import { readFile } from "node:fs/promises";
import { posix } from "node:path";
import { parseMountInfo, readMountInfo, type MountInfo } from "../foundation/mountinfo.ts";

export type CgroupMode = "v1" | "v2" | "hybrid";

/** One v1 hierarchy: its mount point, the cgroup mounted there (absent or "/" on the host) and its controllers. */
export interface CgroupHierarchy {
  mountPoint: string;
  root?: string;
  /** The controllers it carries, or a named hierarchy ("name=systemd"). */
  controllers: string[];
}

export interface CgroupLayout {
  mode: CgroupMode;
  v1: CgroupHierarchy[];
  /** The v2 mount point (/sys/fs/cgroup on v2, /sys/fs/cgroup/unified on hybrid). */
  v2?: string;
  /** The cgroup mounted at `v2` ("/" on the host). */
  v2Root?: string;
}

/** Super options of a v1 cgroup mount that are not controllers. */
const NOT_CONTROLLERS = new Set(["", "rw", "ro", "relatime", "nosuid", "nodev", "noexec", "clone_children", "xattr", "noprefix", "cpuset_v2_mode", "nsdelegate", "memory_recursiveprot"]);

/** The controllers (and named hierarchies, "name=systemd") a v1 cgroup mount carries, from its super options. */
export function v1Controllers(superOptions: string[]): string[] {
  return superOptions.filter((o) => o.startsWith("name=") || (!NOT_CONTROLLERS.has(o) && !o.includes("=")));
}

/** Derives the layout from mountinfo (pure). */
export function cgroupLayout(mounts: MountInfo[]): CgroupLayout {
  const v1 = mounts.filter((m) => m.fsType === "cgroup" && m.mountPoint).map((m) => ({
    mountPoint: m.mountPoint,
    root: m.root || "/",
    controllers: v1Controllers(m.superOptions),
  }));
  const v2m = mounts.filter((m) => m.fsType === "cgroup2" && m.mountPoint);
  const v2 = v2m.find((m) => m.mountPoint === "/sys/fs/cgroup") ?? v2m.find((m) => m.mountPoint === "/sys/fs/cgroup/unified") ?? v2m[0];
  const mode: CgroupMode = v1.length === 0 ? "v2" : v2 ? "hybrid" : "v1";
  return { mode, v1, ...(v2 ? { v2: v2.mountPoint, v2Root: v2.root || "/" } : {}) };
}

/** The first v1 hierarchy carrying `controller` (as the kernel allows each controller once). */
export function hierarchyOf(layout: CgroupLayout, controller: string): CgroupHierarchy | undefined {
  return layout.v1.find((h) => h.controllers.includes(controller));
}

/**
 * The directory of `cgroupsPath` (cgroupfs form, "/kubepods/pod1/berth-<id>") in a hierarchy
 * mounted at `mountPoint` with cgroup `root`: the mounted root is taken off the front (a
 * containerised berth sees its own subtree), "." and ".." parts are dropped, so the result never
 * leaves the mount.
 */
export function cgroupDirIn(mountPoint: string, root: string | undefined, cgroupsPath: string): string {
  let rel = cgroupsPath.startsWith("/") ? cgroupsPath : `/${cgroupsPath}`;
  if (root && root !== "/" && (rel === root || rel.startsWith(`${root}/`))) rel = rel.slice(root.length);
  const parts = rel.split("/").filter((p) => p && p !== "." && p !== "..");
  return parts.length ? posix.join(mountPoint, ...parts) : mountPoint;
}

let cached: CgroupLayout | undefined;

/** The host's layout (read once). */
export async function detectCgroupLayout(): Promise<CgroupLayout> {
  cached ??= cgroupLayout(await readMountInfo());
  return cached;
}

/** The layout from a mountinfo file (tests point this at a fixture). */
export async function readCgroupLayout(mountinfoPath: string): Promise<CgroupLayout> {
  return cgroupLayout(parseMountInfo(await readFile(mountinfoPath, "utf8")));
}

export { parseMountInfo };
