// Pod sysctls: which kernel namespace each one belongs to, and whether the
// pod may set it. Valid ones go into the infra container's OCI linux.sysctl,
// where runc writes them inside the pod's namespaces.

import { invalidArgument } from "../../oci-runtime/foundation/errdefs.ts";

export const SysctlNamespace = {
  NET: "net",
  IPC: "ipc",
  UTS: "uts",
} as const;
export type SysctlNamespace = (typeof SysctlNamespace)[keyof typeof SysctlNamespace];

const IPC_EXACT = new Set(["kernel.sem"]);
const IPC_PREFIXES = ["kernel.shm", "kernel.msg", "fs.mqueue."];
const UTS_EXACT = new Set(["kernel.hostname", "kernel.domainname"]);

/**
 * Normalises a sysctl name to the dotted form. Names whose first separator
 * is "/" (kubelet's `net/ipv4/conf/eth0.100/rp_filter`) have "/" and "."
 * swapped, so dots inside an interface name survive as "/".
 */
export function normalizeSysctlName(name: string): string {
  const slash = name.indexOf("/");
  const dot = name.indexOf(".");
  if (slash < 0 || (dot >= 0 && dot < slash)) return name;
  return name.replace(/[./]/g, (c) => (c === "/" ? "." : "/"));
}

/** The namespace a (normalised) sysctl lives in, or undefined if it is not namespaced. */
export function sysctlNamespace(name: string): SysctlNamespace | undefined {
  if (name.startsWith("net.")) return SysctlNamespace.NET;
  if (IPC_EXACT.has(name) || IPC_PREFIXES.some((p) => name.startsWith(p))) return SysctlNamespace.IPC;
  if (UTS_EXACT.has(name)) return SysctlNamespace.UTS;
  return undefined;
}

export interface PodNamespaces {
  hostNetwork?: boolean;
  hostIpc?: boolean;
  /** Defaults to hostNetwork (in the CRI a pod shares the host's UTS namespace with its network). */
  hostUts?: boolean;
}

const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.\-/:@+]*$/;

/**
 * Checks a pod's sysctls and returns them with normalised names. Throws
 * INVALID_ARGUMENT naming the first sysctl that is malformed, not
 * namespaced, or in a namespace the pod shares with the host.
 */
export function validateSysctls(sysctls: Record<string, string> | Map<string, string> | undefined, ns: PodNamespaces = {}): Record<string, string> {
  const out: Record<string, string> = {};
  const entries = sysctls instanceof Map ? [...sysctls.entries()] : Object.entries(sysctls ?? {});
  const hostUts = ns.hostUts ?? ns.hostNetwork ?? false;
  for (const [raw, value] of entries) {
    const name = normalizeSysctlName(raw);
    // A part becomes one /proc/sys path component with "/" read as "."; "", "." and ".." would climb.
    if (!NAME_RE.test(name) || name.includes("..") || name.split(".").some((s) => ["", ".", ".."].includes(s.replaceAll("/", ".")))) {
      throw invalidArgument(`invalid sysctl name "${raw}"`);
    }
    if (/[\n\0]/.test(value)) throw invalidArgument(`invalid value for sysctl "${raw}"`);
    const kind = sysctlNamespace(name);
    if (!kind) throw invalidArgument(`sysctl "${raw}" is not namespaced and cannot be set for a pod`);
    if (kind === SysctlNamespace.NET && ns.hostNetwork) throw invalidArgument(`sysctl "${raw}" cannot be set for a pod that uses the host network namespace`);
    if (kind === SysctlNamespace.IPC && ns.hostIpc) throw invalidArgument(`sysctl "${raw}" cannot be set for a pod that uses the host IPC namespace`);
    if (kind === SysctlNamespace.UTS && hostUts) throw invalidArgument(`sysctl "${raw}" cannot be set for a pod that uses the host UTS namespace`);
    if (Object.hasOwn(out, name)) throw invalidArgument(`sysctl "${raw}" is given twice`);
    out[name] = value;
  }
  return out;
}
