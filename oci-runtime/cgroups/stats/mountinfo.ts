// Finds cgroup mount points from /proc/self/mountinfo: v1 controllers
// (each its own mount, or co-mounted like "cpu,cpuacct") and the unified
// (v2) hierarchy. Read once per reader.

import { readFile } from "node:fs/promises";
import { parseMountInfo } from "../../foundation/mountinfo.ts";
import { type CgroupMode, v1Controllers } from "../mode.ts";

export interface CgroupMount {
  mountpoint: string;
  /** The cgroup path that is mounted at mountpoint ("/" on the host). */
  root: string;
}

export interface CgroupMounts {
  /** v1 controller name -> mount ("cpu", "cpuacct", "memory", "pids", "hugetlb", ...). */
  v1: Record<string, CgroupMount>;
  /** The cgroup2 mount: /sys/fs/cgroup on pure v2, /sys/fs/cgroup/unified on hybrid. */
  unified?: CgroupMount;
}

export type { CgroupMode };

export function cgroupMode(m: CgroupMounts): CgroupMode {
  const hasV1 = Object.keys(m.v1).length > 0;
  if (!hasV1 && m.unified) return "v2";
  return m.unified ? "hybrid" : "v1";
}

/** Parses mountinfo text. The first mount of each controller wins. */
export function parseCgroupMounts(text: string): CgroupMounts {
  const out: CgroupMounts = { v1: {} };
  for (const m of parseMountInfo(text)) {
    const { mountPoint: mountpoint, root } = m;
    if (!mountpoint) continue;
    if (m.fsType === "cgroup2") {
      out.unified ??= { mountpoint, root };
    } else if (m.fsType === "cgroup") {
      for (const c of v1Controllers(m.superOptions)) out.v1[c] ??= { mountpoint, root };
    }
  }
  return out;
}

export async function loadCgroupMounts(mountinfoPath = "/proc/self/mountinfo"): Promise<CgroupMounts> {
  return parseCgroupMounts(await readFile(mountinfoPath, "utf8"));
}

/** The directory of cgroupsPath (cgroupfs-driver style, e.g. "/kubepods/pod1/abc") under a mount. */
export function cgroupDir(mount: CgroupMount, cgroupsPath: string): string {
  let rel = cgroupsPath.startsWith("/") ? cgroupsPath : "/" + cgroupsPath;
  if (mount.root !== "/" && (rel === mount.root || rel.startsWith(mount.root + "/"))) rel = rel.slice(mount.root.length);
  const parts = rel.split("/").filter((p) => p && p !== "." && p !== "..");
  return [mount.mountpoint.replace(/\/+$/, ""), ...parts].join("/") || "/";
}
