// Builds what a CNI plugin receives: the environment (CNI_* variables) and
// the per-plugin config on stdin (name, cniVersion, prevResult, runtimeConfig
// filtered by the plugin's declared capabilities).

import { checkCniArgValue } from "./pod-input.ts";
import type { NetworkConfigList, PluginConf } from "./cni-config.ts";

export type CniCommand = "ADD" | "DEL" | "CHECK" | "VERSION";

export interface PodRef {
  podName: string;
  podNamespace: string;
  podUid: string;
}

/** CRI PortMapping, as plain TS: protocol is "TCP"/"UDP"/"SCTP" (any case) or the CRI enum number. */
export interface PortMapping {
  protocol?: string | number;
  containerPort: number;
  hostPort: number;
  hostIp?: string;
}

export interface DnsCapability {
  servers?: string[];
  searches?: string[];
  options?: string[];
}

/** Rates in bits per second, bursts in bits, as the bandwidth plugin expects. */
export interface BandwidthCapability {
  ingressRate?: number;
  ingressBurst?: number;
  egressRate?: number;
  egressBurst?: number;
}

/** Capability args as they go into runtimeConfig (keys are the capability names). */
export interface CapabilityArgs {
  portMappings?: { hostPort: number; containerPort: number; protocol: string; hostIP: string }[];
  dns?: DnsCapability;
  bandwidth?: BandwidthCapability;
  [capability: string]: unknown;
}

const PROTOCOL_BY_NUMBER = ["tcp", "udp", "sctp"];

export function portMappingsArg(mappings: PortMapping[] | undefined): CapabilityArgs["portMappings"] {
  const out: NonNullable<CapabilityArgs["portMappings"]> = [];
  for (const m of mappings ?? []) {
    if (!m.hostPort || m.hostPort <= 0) continue; // no host port: nothing to map
    const protocol = typeof m.protocol === "number"
      ? PROTOCOL_BY_NUMBER[m.protocol] ?? "tcp"
      : (m.protocol || "tcp").toLowerCase();
    out.push({ hostPort: m.hostPort, containerPort: m.containerPort, protocol, hostIP: m.hostIp || "0.0.0.0" });
  }
  return out.length ? out : undefined;
}

export interface CapabilityInput {
  portMappings?: PortMapping[];
  dns?: DnsCapability;
  bandwidth?: BandwidthCapability;
  extra?: Record<string, unknown>;
}

/** All capability args the runtime can offer for this pod; empty ones are left out. */
export function capabilityArgs(input: CapabilityInput): CapabilityArgs {
  const args: CapabilityArgs = { ...input.extra };
  const pm = portMappingsArg(input.portMappings);
  if (pm) args.portMappings = pm;
  const dns = input.dns;
  if (dns && (dns.servers?.length || dns.searches?.length || dns.options?.length)) {
    args.dns = { servers: dns.servers ?? [], searches: dns.searches ?? [], options: dns.options ?? [] };
  }
  const bw = input.bandwidth;
  if (bw && Object.values(bw).some((v) => typeof v === "number" && v > 0)) {
    args.bandwidth = Object.fromEntries(Object.entries(bw).filter(([, v]) => typeof v === "number" && v > 0));
  }
  return args;
}

/** runtimeConfig for one plugin: only the capabilities it declares true, and only those we have values for. */
export function runtimeConfigFor(plugin: PluginConf, args: CapabilityArgs): Record<string, unknown> | undefined {
  const caps = plugin.capabilities;
  if (!caps) return undefined;
  const rc: Record<string, unknown> = {};
  for (const [cap, enabled] of Object.entries(caps)) {
    if (enabled === true && args[cap] !== undefined) rc[cap] = args[cap];
  }
  return Object.keys(rc).length ? rc : undefined;
}

/** The JSON a plugin reads on stdin. */
export function pluginStdin(list: Pick<NetworkConfigList, "name" | "cniVersion">, plugin: PluginConf, args: CapabilityArgs, prevResult: unknown): string {
  const conf: Record<string, unknown> = { ...plugin, name: list.name, cniVersion: list.cniVersion };
  delete conf.runtimeConfig;
  const rc = runtimeConfigFor(plugin, args);
  if (rc) conf.runtimeConfig = { ...(plugin.runtimeConfig as Record<string, unknown> | undefined), ...rc };
  else if (plugin.runtimeConfig !== undefined) conf.runtimeConfig = plugin.runtimeConfig;
  if (prevResult !== undefined) conf.prevResult = prevResult;
  else delete conf.prevResult;
  return JSON.stringify(conf);
}

/** CNI_ARGS for a Kubernetes pod. */
export function cniArgs(sandboxId: string, pod: PodRef): string {
  // `K=V;K=V` has no escaping: a ";" or "=" in a value would add or change keys.
  checkCniArgValue("config.metadata.namespace", pod.podNamespace);
  checkCniArgValue("config.metadata.name", pod.podName);
  checkCniArgValue("config.metadata.uid", pod.podUid);
  return [
    "IgnoreUnknown=1",
    `K8S_POD_NAMESPACE=${pod.podNamespace}`,
    `K8S_POD_NAME=${pod.podName}`,
    `K8S_POD_INFRA_CONTAINER_ID=${sandboxId}`,
    `K8S_POD_UID=${pod.podUid}`,
  ].join(";");
}

export interface EnvInput {
  command: CniCommand;
  containerId: string;
  netns: string;
  ifName: string;
  binDirs: string[];
  cniArgs: string;
}

/** The plugin's environment: the daemon's own (PATH for iptables etc.) minus stale CNI_* values, plus ours. */
export function pluginEnv(input: EnvInput, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(base)) if (!k.startsWith("CNI_")) env[k] = v;
  env.CNI_COMMAND = input.command;
  env.CNI_PATH = input.binDirs.join(":");
  if (input.command !== "VERSION") {
    env.CNI_CONTAINERID = input.containerId;
    env.CNI_NETNS = input.netns;
    env.CNI_IFNAME = input.ifName;
    env.CNI_ARGS = input.cniArgs;
  }
  return env;
}
