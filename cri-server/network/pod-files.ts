// Per-pod files the runtime provides: /etc/resolv.conf, /etc/hostname,
// /etc/hosts (written into a pod directory chosen by the caller, then bind
// mounted into the containers), and the pod's /dev/shm tmpfs.

import { copyFile, mkdir, readFile, realpath } from "node:fs/promises";
import { isIP } from "node:net";
import { join } from "node:path";
import { checkResolvWord } from "./pod-input.ts";
import { internal, invalidArgument } from "../../oci-runtime/foundation/errdefs.ts";
import { writeFileAtomic } from "../../oci-runtime/foundation/atomic-file.ts";
import { findMount } from "../../oci-runtime/foundation/mountinfo.ts";
import { describeFailure, MOUNT_TIMEOUT_MS, runCommand } from "../../oci-runtime/foundation/run-command.ts";

/** CRI DNSConfig as plain TS. */
export interface DnsConfig {
  servers?: string[];
  searches?: string[];
  options?: string[];
}

export function renderResolvConf(dns: DnsConfig): string {
  // Each word stays one word of one line, whoever called (validatePodInput refuses them earlier, naming the field).
  (dns.searches ?? []).forEach((s, i) => checkResolvWord(`dns_config.searches[${i}]`, s, 253));
  (dns.options ?? []).forEach((o, i) => checkResolvWord(`dns_config.options[${i}]`, o, 255));
  (dns.servers ?? []).forEach((s, i) => { if (!isIP(s)) throw invalidArgument(`dns_config.servers[${i}] ${JSON.stringify(s)} is not an IP address`); });
  const lines: string[] = [];
  if (dns.searches?.length) lines.push(`search ${dns.searches.join(" ")}`);
  for (const s of dns.servers ?? []) lines.push(`nameserver ${s}`);
  if (dns.options?.length) lines.push(`options ${dns.options.join(" ")}`);
  return lines.length ? lines.join("\n") + "\n" : "";
}

const HOSTNAME_RE = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/;

export function renderHosts(hostname: string, ips: string[]): string {
  const lines = [
    "# Kubernetes-managed hosts file (written by berth).",
    "127.0.0.1\tlocalhost",
    "::1\tlocalhost ip6-localhost ip6-loopback",
    "fe00::0\tip6-localnet",
    "fe00::0\tip6-mcastprefix",
    "fe00::1\tip6-allnodes",
    "fe00::2\tip6-allrouters",
  ];
  if (!HOSTNAME_RE.test(hostname)) throw invalidArgument(`invalid hostname ${JSON.stringify(hostname)}`);
  for (const ip of ips) {
    if (!isIP(ip)) throw invalidArgument(`pod IP ${JSON.stringify(ip)} is not an IP address`);
    lines.push(`${ip}\t${hostname}`);
  }
  return lines.join("\n") + "\n";
}

export interface PodFilesInput {
  /** Directory to write resolv.conf, hostname and hosts into (created). */
  dir: string;
  hostname: string;
  /** Pod IPs, primary first. */
  ips: string[];
  /** The pod's DNSConfig; when absent the host's resolv.conf is copied. */
  dns?: DnsConfig;
  /** Host network pods get a copy of the host's /etc/hosts. */
  hostNetwork?: boolean;
  hostResolvConf?: string;
  hostHosts?: string;
}

export interface PodFiles {
  resolvConf: string;
  hostname: string;
  hosts: string;
}

export async function writePodFiles(input: PodFilesInput): Promise<PodFiles> {
  if (!HOSTNAME_RE.test(input.hostname)) throw invalidArgument(`invalid hostname "${input.hostname}"`);
  await mkdir(input.dir, { recursive: true, mode: 0o700 });
  const files: PodFiles = {
    resolvConf: join(input.dir, "resolv.conf"),
    hostname: join(input.dir, "hostname"),
    hosts: join(input.dir, "hosts"),
  };
  const resolv = input.dns ? renderResolvConf(input.dns) : await readOr(input.hostResolvConf ?? "/etc/resolv.conf", "");
  const hosts = input.hostNetwork ? await readOr(input.hostHosts ?? "/etc/hosts", renderHosts(input.hostname, [])) : renderHosts(input.hostname, input.ips);
  // The three files side by side (each its own fsync); all settle before a failure is thrown, so
  // no write is still going on when the caller removes the directory.
  const results = await Promise.allSettled([
    writeFileAtomic(files.resolvConf, resolv, 0o644),
    writeFileAtomic(files.hostname, input.hostname + "\n", 0o644),
    writeFileAtomic(files.hosts, hosts, 0o644),
  ]);
  for (const r of results) if (r.status === "rejected") throw r.reason;
  return files;
}

async function readOr(path: string, fallback: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return fallback;
    throw internal(`cannot read ${path}: ${(err as Error).message}`, err);
  }
}

export const DEFAULT_SHM_SIZE = 64 * 1024 * 1024;
/** The largest /dev/shm size berth-mount takes (10^15 bytes, far above any memory). */
export const SHM_SIZE_MAX = 1e15;

/**
 * Mounts a tmpfs for the pod's /dev/shm at `dir` (created). Idempotent: an existing tmpfs there is kept.
 * With `helper` (berth-mount) the mount is one system call in it (no util-linux mount).
 */
export async function mountShm(dir: string, sizeBytes: number = DEFAULT_SHM_SIZE, helper?: string): Promise<void> {
  if (!Number.isInteger(sizeBytes) || sizeBytes <= 0 || sizeBytes > SHM_SIZE_MAX) throw invalidArgument(`invalid shm size ${sizeBytes} (1 to ${SHM_SIZE_MAX} bytes)`);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const real = await realpath(dir);
  const m = await findMount(real);
  if (m?.fsType === "tmpfs") return;
  const r = helper
    ? await runCommand(helper, ["shm", real, String(sizeBytes)], { timeoutMs: MOUNT_TIMEOUT_MS })
    : await runCommand("mount", ["-t", "tmpfs", "-o", `nosuid,nodev,noexec,mode=1777,size=${sizeBytes}`, "shm", real], { timeoutMs: MOUNT_TIMEOUT_MS });
  if (r.code !== 0) throw internal(`cannot mount shm tmpfs at ${real}: ${describeFailure(r)}`);
}

/** Unmounts the pod's shm tmpfs. Idempotent: a missing or unmounted dir is fine. The dir itself is left. */
export async function unmountShm(dir: string): Promise<void> {
  let real: string;
  try {
    real = await realpath(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  for (let i = 0; i < 8 && (await findMount(real))?.fsType === "tmpfs"; i++) {
    const r = await runCommand("umount", [real], { timeoutMs: MOUNT_TIMEOUT_MS });
    if (r.code !== 0) throw internal(`cannot unmount shm at ${real}: ${describeFailure(r)}`);
  }
}
