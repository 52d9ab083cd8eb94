// Bytes and inodes used under a directory, as numbers, for ImageFsInfo and a container's
// writable layer: the foundation's walker (hard links once, mounts not crossed); a
// directory that is not there (yet) counts as empty.
import { directoryUsage } from "../oci-runtime/foundation/disk-usage.ts";

export async function diskUsage(root: string): Promise<{ bytes: number; inodes: number }> {
  const u = await directoryUsage(root, { missingOk: true });
  return { bytes: Number(u.bytes), inodes: Number(u.inodes) };
}
