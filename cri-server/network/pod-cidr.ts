// The pod CIDR kubelet pushes with UpdateRuntimeConfig: validated, kept crash-safe in
// <root>/network/pod-cidr.json (root-only), and handed to CNI as the "ipRanges" capability
// (host-local IPAM allocates from it when the plugin declares the capability).
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import { invalidArgument } from "../../oci-runtime/foundation/errdefs.ts";
import { writeJsonAtomic } from "../../oci-runtime/foundation/atomic-file.ts";

const MAX_LEN = 200;

/** The CIDRs of one CIDR or a comma-separated dual-stack pair, as kubelet sends it; INVALID_ARGUMENT names a bad one. */
export function parsePodCidr(value: string): string[] {
  if (value.length > MAX_LEN) throw invalidArgument(`runtime_config.network_config.pod_cidr is longer than ${MAX_LEN} characters`);
  const cidrs = value.split(",").map((s) => s.trim());
  if (cidrs.length > 2) throw invalidArgument(`runtime_config.network_config.pod_cidr ${JSON.stringify(value)}: at most two CIDRs (one IPv4, one IPv6)`);
  const families = new Set<number>();
  for (const cidr of cidrs) {
    const [addr, bits, ...rest] = cidr.split("/");
    const family = isIP(addr ?? "");
    const n = Number(bits);
    if (rest.length || !family || !/^\d+$/.test(bits ?? "") || n > (family === 4 ? 32 : 128)) {
      throw invalidArgument(`runtime_config.network_config.pod_cidr: invalid CIDR ${JSON.stringify(cidr)}`);
    }
    if (families.has(family)) throw invalidArgument(`runtime_config.network_config.pod_cidr ${JSON.stringify(value)}: two CIDRs of the same family`);
    families.add(family);
  }
  return cidrs;
}

/** CNI "ipRanges": one range set per CIDR. */
export const ipRanges = (cidr: string): { subnet: string }[][] => parsePodCidr(cidr).map((subnet) => [{ subnet }]);

const file = (root: string) => join(root, "network", "pod-cidr.json");

/** The stored pod CIDR ("" when none, or when the record is unreadable: kubelet pushes it again). */
export function loadPodCidr(root: string): { cidr: string; problem?: string } {
  let text: string;
  try {
    text = readFileSync(file(root), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { cidr: "" };
    return { cidr: "", problem: `cannot read ${file(root)}: ${(err as Error).message}` };
  }
  try {
    const rec = JSON.parse(text) as { kind?: unknown; podCidr?: unknown };
    if (rec.kind !== "berth-pod-cidr" || typeof rec.podCidr !== "string") throw new Error("not a berth pod CIDR record");
    if (rec.podCidr) parsePodCidr(rec.podCidr);
    return { cidr: rec.podCidr };
  } catch (err) {
    return { cidr: "", problem: `ignoring ${file(root)}: ${(err as Error).message}` };
  }
}

/** Stores the pod CIDR atomically (temp, fsync, rename). */
export async function savePodCidr(root: string, cidr: string): Promise<void> {
  await writeJsonAtomic(file(root), { kind: "berth-pod-cidr", version: 1, podCidr: cidr });
}
