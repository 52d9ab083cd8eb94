// Checks of the RunPodSandbox fields that become text for another program or a file
// format, before anything is created: metadata in CNI_ARGS (`K=V;K=V`), DNS config in
// /etc/resolv.conf (one directive per line), host IPs of port mappings (iptables rules the
// portmap plugin writes), and the size of labels and annotations (kept in every record and
// answered in every list). Each refusal is INVALID_ARGUMENT naming the field and the value.
import { isIP } from "node:net";
import type { PodSandboxConfig } from "../../proto/gen/runtime/v1/api_pb.js";
import { invalidArgument } from "../../oci-runtime/foundation/errdefs.ts";

/** Kubernetes' own bound on a pod's annotations (TotalAnnotationSizeLimitB); berth applies it to labels too. */
export const MAX_KEY_VALUE_BYTES = 256 * 1024;
export const MAX_DNS_SERVERS = 16;
/** glibc reads at most 32 search domains worth 2048 characters in total (as kubelet's limits). */
export const MAX_DNS_SEARCHES = 32;
export const MAX_DNS_SEARCH_CHARS = 2048;
export const MAX_DNS_OPTIONS = 64;
export const MAX_PORT_MAPPINGS = 1024;

const show = (v: string) => JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}…` : v);
// C0 controls (newline, NUL...), DEL and the C1 controls.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** A name that goes into command lines and logs (the monitor's --name): no control characters, NUL included. */
export function checkNoControl(field: string, v: string): void {
  if (CONTROL.test(v)) throw invalidArgument(`${field} ${show(v)} must not contain control characters`);
}

/** A value that goes into CNI_ARGS: ";" would start another key, "=" confuses the key/value split. */
export function checkCniArgValue(field: string, v: string): void {
  if (/[;=]/.test(v) || CONTROL.test(v)) {
    throw invalidArgument(`${field} ${show(v)} must not contain ";", "=" or control characters (it is passed to CNI plugins in CNI_ARGS)`);
  }
}

/** One word of a resolv.conf line: no whitespace (another word), no newline (another directive), no "#"/";" (a comment). */
export function checkResolvWord(field: string, v: string, max: number): void {
  if (v.length === 0) throw invalidArgument(`${field} must not be empty`);
  if (v.length > max) throw invalidArgument(`${field} ${show(v)} is longer than ${max} characters`);
  if (/[\s#;]/.test(v) || CONTROL.test(v)) {
    throw invalidArgument(`${field} ${show(v)} must not contain whitespace, newlines, "#", ";" or control characters (it becomes a line of /etc/resolv.conf)`);
  }
}

export function checkKeyValues(field: string, map: Record<string, string>): void {
  let total = 0;
  for (const [k, v] of Object.entries(map)) {
    if (k.length === 0) throw invalidArgument(`${field}: keys must not be empty`);
    total += Buffer.byteLength(k) + Buffer.byteLength(v);
    if (total > MAX_KEY_VALUE_BYTES) throw invalidArgument(`${field} are larger than the limit of ${MAX_KEY_VALUE_BYTES} bytes (keys and values together)`);
  }
}

export function validatePodInput(cfg: PodSandboxConfig): void {
  const m = cfg.metadata;
  if (m) {
    checkCniArgValue("config.metadata.name", m.name);
    checkCniArgValue("config.metadata.namespace", m.namespace);
    checkCniArgValue("config.metadata.uid", m.uid);
  }
  const dns = cfg.dnsConfig;
  if (dns) {
    if (dns.servers.length > MAX_DNS_SERVERS) throw invalidArgument(`config.dns_config.servers: ${dns.servers.length} servers, more than the limit of ${MAX_DNS_SERVERS}`);
    dns.servers.forEach((s, i) => { if (!isIP(s)) throw invalidArgument(`config.dns_config.servers[${i}] ${show(s)} is not an IP address`); });
    if (dns.searches.length > MAX_DNS_SEARCHES) throw invalidArgument(`config.dns_config.searches: ${dns.searches.length} domains, more than the limit of ${MAX_DNS_SEARCHES}`);
    dns.searches.forEach((s, i) => checkResolvWord(`config.dns_config.searches[${i}]`, s, 253));
    const chars = dns.searches.reduce((n, s) => n + s.length + 1, 0);
    if (chars > MAX_DNS_SEARCH_CHARS) throw invalidArgument(`config.dns_config.searches: ${chars} characters, more than the limit of ${MAX_DNS_SEARCH_CHARS}`);
    if (dns.options.length > MAX_DNS_OPTIONS) throw invalidArgument(`config.dns_config.options: ${dns.options.length} options, more than the limit of ${MAX_DNS_OPTIONS}`);
    dns.options.forEach((o, i) => checkResolvWord(`config.dns_config.options[${i}]`, o, 255));
  }
  if (cfg.portMappings.length > MAX_PORT_MAPPINGS) throw invalidArgument(`config.port_mappings: ${cfg.portMappings.length} mappings, more than the limit of ${MAX_PORT_MAPPINGS}`);
  cfg.portMappings.forEach((p, i) => {
    if (p.hostIp !== "" && !isIP(p.hostIp)) throw invalidArgument(`config.port_mappings[${i}].host_ip ${show(p.hostIp)} is not an IP address`);
  });
  checkKeyValues("config.labels", cfg.labels);
  checkKeyValues("config.annotations", cfg.annotations);
}
