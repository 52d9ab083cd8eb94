// All device nodes of the host's /dev, for privileged containers. Skips what the runtime cannot or must not
// recreate: /dev/pts, /dev/shm, /dev/fd, /dev/mqueue (and lxc/lxd/udev bookkeeping directories), the
// console, fifos, and anything that vanishes or cannot be read while walking.

import { lstat, readdir } from "node:fs/promises";
import { join } from "node:path";
import type { LinuxDevice } from "../bundle-spec/types.ts";

const SKIP_DIRS = new Set(["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"]);
const S_IFMT = 0o170000n;
const S_IFCHR = 0o020000n;
const S_IFBLK = 0o060000n;

/** Linux's encoding of dev_t (glibc's gnu_dev_major / gnu_dev_minor). */
export const devMajor = (rdev: bigint): number => Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
export const devMinor = (rdev: bigint): number => Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));

async function deviceAt(path: string): Promise<LinuxDevice | undefined> {
  let st;
  try {
    st = await lstat(path, { bigint: true });
  } catch {
    return undefined;
  }
  const fmt = st.mode & S_IFMT;
  const type = fmt === S_IFCHR ? "c" : fmt === S_IFBLK ? "b" : undefined;
  if (!type) return undefined;
  return {
    type, path, major: devMajor(st.rdev), minor: devMinor(st.rdev),
    fileMode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid),
  };
}

/** Devices under `root` (default /dev), depth first, in directory order. */
export async function hostDevices(root = "/dev"): Promise<LinuxDevice[]> {
  let entries;
  try {
    entries = await readdir(root, { withFileTypes: true });
  } catch {
    return [];
  }
  const out: LinuxDevice[] = [];
  for (const e of entries) {
    const path = join(root, e.name);
    if (e.isDirectory()) {
      if (!SKIP_DIRS.has(e.name)) out.push(...await hostDevices(path));
      continue;
    }
    if (e.name === "console") continue;
    if (!e.isCharacterDevice() && !e.isBlockDevice()) continue;
    const dev = await deviceAt(path);
    if (dev) out.push(dev);
  }
  return out;
}
