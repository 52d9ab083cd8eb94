// cgroup layout of the host: v1, v2 (unified) or hybrid (v1 controllers plus a v2 tree).
import { parseMountInfo, readMountInfo, type MountInfo } from "../foundation/mountinfo.ts";

export type CgroupMode = "v1" | "v2" | "hybrid";

export interface CgroupLayout {
  mode: CgroupMode;
  /** v1 hierarchies: mount point and the controllers (or "name=systemd") it carries. */
  v1: { mountPoint: string; controllers: string[] }[];
  /** The v2 mount point (/sys/fs/cgroup on v2, /sys/fs/cgroup/unified on hybrid). */
  v2?: string;
}

/** Super options of a v1 cgroup mount that are not controllers. */
const NOT_CONTROLLERS = new Set(["", "rw", "ro", "relatime", "nosuid", "nodev", "noexec", "clone_children", "xattr", "noprefix", "cpuset_v2_mode", "nsdelegate", "memory_recursiveprot"]);

/** The controllers (and named hierarchies, "name=systemd") a v1 cgroup mount carries, from its super options. */
export function v1Controllers(superOptions: string[]): string[] {
  return superOptions.filter((o) => o.startsWith("name=") || (!NOT_CONTROLLERS.has(o) && !o.includes("=")));
}

/** Derives the layout from mountinfo (pure). */
export function cgroupLayout(mounts: MountInfo[]): CgroupLayout {
  const v1 = mounts.filter((m) => m.fsType === "cgroup").map((m) => ({
    mountPoint: m.mountPoint,
    controllers: v1Controllers(m.superOptions),
  }));
  const v2m = mounts.filter((m) => m.fsType === "cgroup2");
  const v2 = (v2m.find((m) => m.mountPoint === "/sys/fs/cgroup") ?? v2m.find((m) => m.mountPoint === "/sys/fs/cgroup/unified") ?? v2m[0])?.mountPoint;
  const mode: CgroupMode = v1.length === 0 ? "v2" : v2 ? "hybrid" : "v1";
  return { mode, v1, ...(v2 ? { v2 } : {}) };
}

let cached: CgroupLayout | undefined;

/** The host's layout (read once). */
export async function detectCgroupLayout(): Promise<CgroupLayout> {
  cached ??= cgroupLayout(await readMountInfo());
  return cached;
}

export { parseMountInfo };
