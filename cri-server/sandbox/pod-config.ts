// The checks RunPodSandbox makes of its PodSandboxConfig before anything is created
// (INVALID_ARGUMENT naming the field), the pod's user namespace, and its reserved name.
import { isIP } from "node:net";
import { NamespaceMode, type PodSandboxConfig } from "../../proto/gen/runtime/v1/api_pb.js";
import { invalidArgument } from "../../oci-runtime/foundation/errdefs.ts";
import { checkIdMap, type PodUserns } from "../../oci-runtime/mounts/mount-helper.ts";
import { cgroupParentPath } from "../../oci-runtime/cgroups/paths.ts";
import { podBandwidth } from "../network/bandwidth.ts";
import { validatePodInput } from "../network/pod-input.ts";

/** The longest hostname a pod gets from its name. */
export const HOSTNAME_MAX = 63;

const HOSTNAME_RE = /^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;

/** Checks the fields RunPodSandbox acts on before anything is created (INVALID_ARGUMENT naming the field). */
export function validatePodConfig(cfg: PodSandboxConfig): void {
  validatePodInput(cfg);
  cgroupParentPath(cfg.linux?.cgroupParent, "config.linux.cgroup_parent"); // oci-runtime's one cgroup-path check
  const m = cfg.metadata!;
  for (const [field, v] of [["name", m.name], ["namespace", m.namespace], ["uid", m.uid]] as const) {
    if (v.length > 253) throw invalidArgument(`config.metadata.${field} is longer than 253 characters`);
    if (/[\0/]/.test(v)) throw invalidArgument(`config.metadata.${field} ${JSON.stringify(v)} must not contain "/" or NUL`);
  }
  if (cfg.hostname && (cfg.hostname.length > 253 || !HOSTNAME_RE.test(cfg.hostname))) {
    throw invalidArgument(`config.hostname ${JSON.stringify(cfg.hostname.slice(0, 80))} is not a valid hostname`);
  }
  const ns = cfg.linux?.securityContext?.namespaceOptions;
  if (ns) {
    for (const [field, v, allowed] of [["network", ns.network, [0, 2]], ["pid", ns.pid, [0, 1, 2, 3]], ["ipc", ns.ipc, [0, 2]]] as const) {
      if (!(allowed as readonly number[]).includes(v)) throw invalidArgument(`config.linux.security_context.namespace_options.${field}: unsupported namespace mode ${v} for a pod`);
    }
  }
  cfg.portMappings.forEach((p, i) => {
    if (p.protocol < 0 || p.protocol > 2) throw invalidArgument(`config.port_mappings[${i}].protocol: unknown protocol ${p.protocol}`);
    if (!Number.isInteger(p.containerPort) || p.containerPort < 1 || p.containerPort > 65535) throw invalidArgument(`config.port_mappings[${i}].container_port ${p.containerPort} is not a port`);
    if (!Number.isInteger(p.hostPort) || p.hostPort < 0 || p.hostPort > 65535) throw invalidArgument(`config.port_mappings[${i}].host_port ${p.hostPort} is not a port`);
  });
  podBandwidth(cfg.annotations);
  if (cfg.dnsConfig) {
    for (const s of cfg.dnsConfig.servers) if (!isIP(s)) throw invalidArgument(`config.dns_config.servers: ${JSON.stringify(s)} is not an IP address`);
  }
}

/**
 * The pod's user namespace from namespace_options.userns_options (KEP-127): absent or mode NODE
 * is the host's; mode POD needs exactly one uid and one gid mapping, each mapping container id 0;
 * CONTAINER and TARGET are refused. A pod with its own user namespace cannot share the host's
 * network, pid or ipc namespace (as kubelet never asks).
 */
export function podUsernsOf(cfg: PodSandboxConfig): PodUserns | undefined {
  const ns = cfg.linux?.securityContext?.namespaceOptions;
  const u = ns?.usernsOptions;
  const field = "config.linux.security_context.namespace_options.userns_options";
  if (!u) return undefined;
  if (u.mode === NamespaceMode.NODE) {
    if (u.uids.length || u.gids.length) throw invalidArgument(`${field}: mode NODE takes no uids/gids mappings (got ${u.uids.length} and ${u.gids.length})`);
    return undefined;
  }
  if (u.mode !== NamespaceMode.POD) {
    throw invalidArgument(`${field}.mode ${NamespaceMode[u.mode] ?? u.mode} is not supported for a pod: only POD (its own user namespace) and NODE (the host's)`);
  }
  for (const [k, list] of [["uids", u.uids], ["gids", u.gids]] as const) {
    if (list.length !== 1) throw invalidArgument(`${field}.${k}: exactly one mapping is supported, got ${list.length}`);
    const m = list[0]!;
    if (m.containerId !== 0) throw invalidArgument(`${field}.${k}[0]: container id 0 must be mapped (the mapping starts at container id ${m.containerId})`);
    checkIdMap({ containerId: m.containerId, hostId: m.hostId, length: m.length }, `${field}.${k}[0]`);
  }
  for (const [k, v] of [["network", ns!.network], ["pid", ns!.pid], ["ipc", ns!.ipc]] as const) {
    if (v === NamespaceMode.NODE) throw invalidArgument(`${field}: a pod with its own user namespace cannot use the host's ${k} namespace (namespace_options.${k} NODE)`);
  }
  const [uid, gid] = [u.uids[0]!, u.gids[0]!];
  return {
    uids: { containerId: uid.containerId, hostId: uid.hostId, length: uid.length },
    gids: { containerId: gid.containerId, hostId: gid.hostId, length: gid.length },
  };
}

export const sandboxName = (m: { name: string; namespace: string; uid: string; attempt: number }) =>
  `${m.name}_${m.namespace}_${m.uid}_${m.attempt}`;
