// Pod sandboxes: run, stop, remove, status, list, and recovery after a restart.
// Every step of a run registers its undo (Cleanup), so a failure leaves no netns,
// IP lease, mount, cgroup or process behind.
import { createHash, randomBytes } from "node:crypto";
import { isIP } from "node:net";
import { mkdir, readdir, rm } from "node:fs/promises";
import { basename, join } from "node:path";
import { fromJson, toJson, type JsonValue } from "@bufbuild/protobuf";
import {
  NamespaceMode, PodSandboxConfigSchema, PodSandboxState, RunPodSandboxRequestSchema,
  type PodSandboxConfig, type RunPodSandboxRequest,
} from "../../proto/gen/runtime/v1/api_pb.js";
import type { Config } from "../config.ts";
import { CreateCache } from "../create-cache.ts";
import { alreadyExists, invalidArgument } from "../../oci-runtime/foundation/errdefs.ts";
import type { Logger } from "../../oci-runtime/foundation/log.ts";
import { createNetns, listNetns, removeNetns } from "../network/netns.ts";
import type { NetworkManager } from "../network/cni.ts";
import { mountShm, unmountShm, writePodFiles } from "../network/pod-files.ts";
import { validateSysctls } from "../network/sysctl.ts";
import { validatePodInput } from "../network/pod-input.ts";
import { podBandwidth } from "../network/bandwidth.ts";
import { Store } from "../stores/store.ts";
import { loadMessage, storeMessage } from "../stores/proto-record.ts";
import { nowNs } from "../../oci-runtime/foundation/clock.ts";
import { Cleanup } from "../../oci-runtime/foundation/cleanup.ts";
import { checkIdMap, createPodUserns, listPrepared, mountHelperPath, podUsernsDir, removeUnder, type PodUserns } from "../../oci-runtime/mounts/mount-helper.ts";
import type { MountFeatures } from "../../oci-runtime/mounts/features.ts";
import type { SandboxRecord } from "./sandbox-record.ts";

/** What the sandbox manager needs from the OCI runtime layer for infra processes. */
export interface InfraInput {
  id: string;
  handler: string;
  bundle: string;
  hostname: string;
  netnsPath: string;
  namespaces: SandboxRecord["namespaces"];
  sysctls: Record<string, string>;
  cgroupParent: string;
  podDir: string;
  shmPath: string;
  config: PodSandboxConfig;
  /** The pod's own user namespace: the infra process joins it (and the netns it owns). */
  userns?: SandboxRecord["userns"];
}

export interface InfraRuntime {
  /** Creates and starts the infra process; returns its pid and cgroups path. Must undo itself on failure; `signal` (the RPC's deadline) aborts it. */
  start(input: InfraInput & { signal?: AbortSignal | undefined }): Promise<{ pid: number; cgroupsPath: string; startTime?: string; bootId?: string }>;
  /** Refuses a handler that cannot run (its binary missing) before anything is created. */
  preflight?(handler: string): void;
  /** Kills the infra process and waits for it (idempotent). */
  stop(rec: SandboxRecord): Promise<void>;
  /** Deletes the runtime's state, bundle and cgroups (idempotent). */
  remove(rec: SandboxRecord): Promise<void>;
  /** Whether the infra process is alive. */
  alive(rec: SandboxRecord): Promise<boolean>;
}

/** What the sandbox manager needs from the container side (stop/remove a pod's containers). */
export interface PodContainers {
  stopAll(sandboxId: string): Promise<void>;
  removeAll(sandboxId: string): Promise<void>;
}

const HOSTNAME_RE = /^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;

/** Checks the fields RunPodSandbox acts on before anything is created (INVALID_ARGUMENT naming the field). */
export function validatePodConfig(cfg: PodSandboxConfig): void {
  validatePodInput(cfg);
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

/** A hash of a request that ignores map order (kubelet's Go marshaller orders map entries at random). */
export function requestFingerprint(json: unknown): string {
  const canon = (v: unknown): unknown => Array.isArray(v) ? v.map(canon)
    : v && typeof v === "object" ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, canon((v as Record<string, unknown>)[k])])) : v;
  return createHash("sha256").update(JSON.stringify(canon(json))).digest("hex");
}

export const sandboxName = (m: { name: string; namespace: string; uid: string; attempt: number }) =>
  `${m.name}_${m.namespace}_${m.uid}_${m.attempt}`;

const HOSTNAME_MAX = 63;

export class SandboxManager {
  readonly store: Store<SandboxRecord>;
  private readonly config: Config;
  private readonly log: Logger;
  private readonly network: NetworkManager;
  private readonly infra: InfraRuntime;
  private readonly creates: CreateCache;
  containers: PodContainers = { stopAll: async () => {}, removeAll: async () => {} };
  /** Mount features per handler from the daemon's start-up probe (user namespaces need them). */
  mountFeatures = new Map<string, MountFeatures>();

  constructor(opts: { config: Config; log: Logger; network: NetworkManager; infra: InfraRuntime }) {
    this.config = opts.config;
    this.log = opts.log.child({ component: "sandbox" });
    this.network = opts.network;
    this.infra = opts.infra;
    this.store = new Store<SandboxRecord>("sandbox", join(opts.config.root, "sandboxes"));
    this.creates = new CreateCache(opts.config.runtime.create_cache_ttl * 1000);
  }

  handlerOf(name: string): string {
    const handler = name || this.config.runtime.default_handler;
    if (!this.config.runtime.handlers[handler]) {
      throw invalidArgument(`runtime handler ${JSON.stringify(name)} is not configured (known: ${Object.keys(this.config.runtime.handlers).join(", ")})`);
    }
    return handler;
  }

  /** RunPodSandbox. A retry of a create still in progress (or finished after the caller gave up) gets the same id. */
  async run(req: RunPodSandboxRequest, signal?: AbortSignal): Promise<string> {
    const cfg = req.config;
    if (!cfg) throw invalidArgument("config must be set");
    const m = cfg.metadata;
    if (!m) throw invalidArgument("config.metadata must be set");
    if (!m.name) throw invalidArgument("config.metadata.name must not be empty");
    if (!m.namespace) throw invalidArgument("config.metadata.namespace must not be empty");
    if (!m.uid) throw invalidArgument("config.metadata.uid must not be empty");
    const handler = this.handlerOf(req.runtimeHandler);
    validatePodConfig(cfg);
    const userns = podUsernsOf(cfg);
    if (userns && !this.mountFeatures.get(handler)?.userNamespaces) {
      const why = this.mountFeatures.get(handler)?.reasons.filter((r) => r.startsWith("user namespaces")).join("; ") || "not probed";
      throw invalidArgument(`config.linux.security_context.namespace_options.userns_options: runtime handler ${JSON.stringify(handler)} does not support user namespaces here (${why})`);
    }
    this.infra.preflight?.(handler);
    const name = sandboxName(m);
    const fingerprint = requestFingerprint(toJson(RunPodSandboxRequestSchema, req));
    const pending = this.creates.get(name);
    if (pending && pending.fingerprint === fingerprint) {
      this.log.info("retry joins an earlier create", { name });
      return pending.result;
    }
    const existing = this.store.idOfName(name);
    if (existing) throw alreadyExists(`pod sandbox name ${JSON.stringify(name)} is already reserved by sandbox ${existing}`);
    const id = randomBytes(32).toString("hex");
    this.store.reserveName(name, id);
    const result = this.create(id, name, handler, cfg, signal).catch((err) => {
      this.store.releaseName(name, id);
      throw err;
    });
    this.creates.track(name, fingerprint, result);
    return result;
  }

  private get mountHelper(): string { return mountHelperPath(this.config.runtime.io_helper); }

  /** Unpins the pod's user namespace (and the network namespace it owns); idempotent. */
  private async removeUserns(id: string): Promise<void> {
    await removeUnder(this.mountHelper, podUsernsDir(this.config.state, id));
  }

  private async create(id: string, name: string, handler: string, cfg: PodSandboxConfig, signal?: AbortSignal): Promise<string> {
    const m = cfg.metadata!;
    const linux = cfg.linux;
    const nsOpts = linux?.securityContext?.namespaceOptions;
    const namespaces = {
      network: nsOpts?.network ?? NamespaceMode.POD,
      pid: nsOpts?.pid ?? NamespaceMode.POD,
      ipc: nsOpts?.ipc ?? NamespaceMode.POD,
      targetId: nsOpts?.targetId ?? "",
    };
    const hostNetwork = namespaces.network === NamespaceMode.NODE;
    const hostIpc = namespaces.ipc === NamespaceMode.NODE;
    const sysctls = validateSysctls(linux?.sysctls, { hostNetwork, hostIpc });
    const hostname = cfg.hostname || (hostNetwork ? "" : m.name.slice(0, HOSTNAME_MAX));
    const podDir = join(this.config.state, "sandboxes", id);
    const cleanup = new Cleanup(this.log.child({ sandbox: id }));
    const rec: SandboxRecord = {
      id, name, state: "creating",
      metadata: { name: m.name, uid: m.uid, namespace: m.namespace, attempt: m.attempt },
      createdAt: nowNs().toString(),
      labels: { ...cfg.labels },
      annotations: { ...cfg.annotations },
      runtimeHandler: handler,
      config: storeMessage(PodSandboxConfigSchema, cfg),
      namespaces,
      netnsPath: "",
      ips: [],
      podDir,
      shmPath: hostIpc ? "" : join(podDir, "shm"),
      cgroupParent: linux?.cgroupParent ?? "",
      infra: { pid: 0, bundle: join(podDir, "bundle"), cgroupsPath: "" },
    };
    try {
      // The record goes to disk first, so a crash mid-create is found and cleaned at start.
      await this.store.add(rec);
      cleanup.add("sandbox record", () => this.store.delete(id));
      await mkdir(podDir, { recursive: true, mode: 0o700 });
      cleanup.add("pod directory", () => rm(podDir, { recursive: true, force: true }));
      if (rec.shmPath) {
        await mountShm(rec.shmPath, this.config.runtime.shm_size);
        cleanup.add("shm", () => unmountShm(rec.shmPath));
      }
      const userns = podUsernsOf(cfg);
      if (userns) {
        // The network namespace is created inside the pod's user namespace, which owns it (so its
        // sysctls and sysfs are the pod's); both are pinned under <state>/userns/pods/<id>.
        cleanup.add("user namespace", () => this.removeUserns(id));
        const pins = await createPodUserns(this.mountHelper, this.config.state, id, userns, !hostNetwork);
        rec.userns = { path: pins.usernsPath, ...userns };
        rec.netnsPath = pins.netnsPath;
        await this.store.update(id, (r) => { r.netnsPath = rec.netnsPath; r.userns = rec.userns; });
      } else if (!hostNetwork) {
        rec.netnsPath = await createNetns({ stateDir: this.config.state }, id.slice(0, 32));
        cleanup.add("netns", () => removeNetns(rec.netnsPath));
        await this.store.update(id, (r) => { r.netnsPath = rec.netnsPath; });
      }
      // The infra process needs only the netns, not its addresses: start it while CNI runs.
      const bandwidth = podBandwidth(cfg.annotations);
      const dns = cfg.dnsConfig ? { servers: cfg.dnsConfig.servers, searches: cfg.dnsConfig.searches, options: cfg.dnsConfig.options } : undefined;
      const [netResult, infraResult] = await Promise.allSettled([
        hostNetwork ? Promise.resolve(undefined) : this.network.setUp({
          sandboxId: id,
          netnsPath: rec.netnsPath,
          podName: m.name,
          podNamespace: m.namespace,
          podUid: m.uid,
          portMappings: cfg.portMappings.map((p) => ({
            containerPort: p.containerPort,
            hostPort: p.hostPort,
            protocol: (["tcp", "udp", "sctp"][p.protocol] ?? "tcp") as "tcp" | "udp" | "sctp",
            hostIP: p.hostIp,
          })),
          ...(dns ? { dns } : {}),
          ...(bandwidth ? { bandwidth } : {}),
          signal,
        }),
        this.infra.start({
          signal,
          id, handler, bundle: rec.infra.bundle, hostname, netnsPath: rec.netnsPath, namespaces, sysctls,
          cgroupParent: rec.cgroupParent, podDir, shmPath: rec.shmPath, config: cfg,
          ...(rec.userns ? { userns: rec.userns } : {}),
        }),
      ]);
      if (netResult.status === "fulfilled" && !hostNetwork) cleanup.add("cni", () => this.network.tearDown(id, rec.netnsPath));
      if (infraResult.status === "fulfilled") cleanup.add("infra", async () => { await this.infra.stop(rec); await this.infra.remove(rec); });
      if (netResult.status === "rejected") throw netResult.reason;
      if (infraResult.status === "rejected") throw infraResult.reason;
      const infra = infraResult.value;
      rec.ips = netResult.value?.ips ?? [];
      rec.infra.pid = infra.pid;
      if (infra.startTime) rec.infra.startTime = infra.startTime;
      if (infra.bootId) rec.infra.bootId = infra.bootId;
      await writePodFiles({
        dir: podDir,
        hostname: hostname || (await import("node:os")).hostname(),
        ips: rec.ips,
        ...(dns ? { dns } : {}),
        hostNetwork,
      });
      rec.infra.pid = infra.pid;
      rec.infra.cgroupsPath = infra.cgroupsPath;
      await this.store.update(id, (r) => {
        r.state = "ready";
        r.ips = rec.ips;
        r.infra = rec.infra;
      });
      cleanup.commit();
      this.log.info("sandbox ready", { sandbox: id, name, ips: rec.ips, pid: infra.pid });
      return id;
    } catch (err) {
      await cleanup.unwind();
      throw err;
    }
  }

  /** Fetches a sandbox by id or unique prefix (NOT_FOUND otherwise). */
  get(id: string): SandboxRecord {
    return this.store.get(id, "pod_sandbox_id");
  }

  podConfig(rec: SandboxRecord): PodSandboxConfig {
    return loadMessage(PodSandboxConfigSchema, rec.config, `pod sandbox ${rec.id}`);
  }

  /** StopPodSandbox: idempotent; an unknown id succeeds (CRI: "must not return an error if already stopped or missing"). */
  async stop(id: string): Promise<void> {
    const rec = this.store.resolve(id);
    if (!rec) return;
    await this.store.withLock(rec.id, async () => {
      if (!this.store.tryGet(rec.id)) return; // removed meanwhile: stopped is what the caller wanted
      await this.containers.stopAll(rec.id);
      await this.infra.stop(rec);
      if (rec.netnsPath) await this.network.tearDown(rec.id, rec.netnsPath);
      if (rec.netnsPath) await removeNetns(rec.netnsPath);
      if (rec.shmPath) await unmountShm(rec.shmPath);
      if (rec.userns) await this.removeUserns(rec.id);
      await this.store.update(rec.id, (r) => { r.state = "notready"; });
    });
  }

  /** RemovePodSandbox: stops first, removes the pod's containers; an unknown id succeeds. */
  async remove(id: string): Promise<void> {
    const rec = this.store.resolve(id);
    if (!rec) return;
    await this.stop(rec.id);
    await this.store.withLock(rec.id, async () => {
      if (!this.store.tryGet(rec.id)) return;
      await this.containers.removeAll(rec.id);
      await this.infra.remove(rec);
      await this.removeUserns(rec.id);
      await rm(rec.podDir, { recursive: true, force: true });
      await this.store.delete(rec.id);
      this.creates.forget(rec.name);
    });
  }

  /** The CRI state of a sandbox. */
  criState(rec: SandboxRecord): PodSandboxState {
    return rec.state === "ready" ? PodSandboxState.SANDBOX_READY : PodSandboxState.SANDBOX_NOTREADY;
  }

  /** The state to report: a ready sandbox whose infra process died is not ready. */
  async liveState(rec: SandboxRecord): Promise<PodSandboxState> {
    if (rec.state === "ready" && !(await this.infra.alive(rec))) return PodSandboxState.SANDBOX_NOTREADY;
    return this.criState(rec);
  }

  list(): SandboxRecord[] {
    return this.store.list().filter((r) => r.state !== "creating");
  }

  /**
   * After a restart: records left "creating" are rolled back; ready sandboxes whose
   * infra process died are marked not ready (their network is torn down when stopped).
   */
  async recover(): Promise<void> {
    const recs = await this.store.load((file, err) => this.log.error("unreadable sandbox record", { file, error: err }));
    for (const rec of recs) {
      if (rec.state === "creating") {
        this.log.warn("cleaning up a sandbox whose create was interrupted", { sandbox: rec.id });
        try {
          await this.infra.stop(rec);
          await this.infra.remove(rec);
          if (rec.netnsPath) { await this.network.tearDown(rec.id, rec.netnsPath); await removeNetns(rec.netnsPath); }
          if (rec.shmPath) await unmountShm(rec.shmPath);
          await this.removeUserns(rec.id);
          await rm(rec.podDir, { recursive: true, force: true });
          await this.store.delete(rec.id);
        } catch (err) {
          // Keep it visible (not ready) rather than hidden with its name reserved: kubelet then
          // removes it, which retries the cleanup.
          this.log.error("cleanup of an interrupted sandbox failed; reporting it not ready", { sandbox: rec.id, error: err });
          await this.store.update(rec.id, (r) => { r.state = "notready"; r.reason = `create interrupted and cleanup failed: ${(err as Error).message}`; }).catch(() => {});
        }
        continue;
      }
      if (rec.state === "ready" && !(await this.infra.alive(rec))) {
        this.log.warn("sandbox infra process is gone; marking not ready", { sandbox: rec.id });
        await this.store.update(rec.id, (r) => { r.state = "notready"; r.reason = "infra process exited while berthd was down"; });
      }
    }
    await this.sweepOrphans();
  }

  /**
   * Removes what a create interrupted before its record knew about it: pinned netns,
   * CNI attachments (with their IP leases) and pod directories of no known sandbox.
   */
  private async sweepOrphans(): Promise<void> {
    const known = new Set(this.store.list().map((r) => r.id));
    const knownNetns = new Set(this.store.list().flatMap((r) => [r.netnsPath ? basename(r.netnsPath) : "", r.id.slice(0, 32)]));
    for (const id of await this.network.listCached()) {
      if (known.has(id)) continue;
      this.log.warn("tearing down the network of an unknown sandbox", { sandbox: id });
      await this.network.tearDown(id).catch((err) => this.log.error("orphan cni teardown failed", { sandbox: id, error: err }));
    }
    for (const path of await listNetns(this.config.state).catch(() => [] as string[])) {
      if (knownNetns.has(basename(path))) continue;
      this.log.warn("removing an orphaned network namespace", { path });
      await removeNetns(path).catch((err) => this.log.error("orphan netns removal failed", { path, error: err }));
    }
    // User namespace pins (and the netns each owns) of no known sandbox.
    for (const id of await listPrepared(this.config.state, "pods").catch(() => [] as string[])) {
      if (this.store.tryGet(id)) continue; // a known sandbox's stop or remove unpins them
      this.log.warn("removing the user namespace pins of an unknown sandbox", { sandbox: id });
      await this.removeUserns(id).catch((err) => this.log.error("user namespace pin removal failed", { sandbox: id, error: err }));
    }
    let dirs: string[] = [];
    try { dirs = await readdir(join(this.config.state, "sandboxes")); } catch { /* none yet */ }
    for (const d of dirs) {
      if (known.has(d)) continue;
      const dir = join(this.config.state, "sandboxes", d);
      this.log.warn("removing an orphaned pod directory", { dir });
      await unmountShm(join(dir, "shm")).catch(() => {});
      await rm(dir, { recursive: true, force: true }).catch(() => {});
    }
  }
}
