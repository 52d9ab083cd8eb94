// NetworkManager: a pod's CNI network. Loads the first config in conf_dir,
// runs its plugin chain for ADD (in order, with prevResult chaining), DEL (in
// reverse, with the cached result) and CHECK, caches each ADD's input and
// result under <stateDir>/cni-cache so DEL after a restart uses the same
// config, and rolls an ADD back with DEL if any plugin fails.

import { statSync } from "node:fs";
import { join } from "node:path";
import { BerthError, Code, failedPrecondition, internal, invalidArgument, notFound } from "../../oci-runtime/foundation/errdefs.ts";
import type { Logger } from "../../oci-runtime/foundation/log.ts";
import { log as rootLog } from "../../oci-runtime/foundation/log.ts";
import type { CacheEntry } from "./cni-cache.ts";
import { CniCache, checkSandboxId } from "./cni-cache.ts";
import type { NetworkConfigList } from "./cni-config.ts";
import { loadNetworkConfig } from "./cni-config.ts";
import { isGoneError } from "./cni-error.ts";
import type { Runner } from "./cni-exec.ts";
import { PluginExec, findPlugin } from "./cni-exec.ts";
import type { BandwidthCapability, CapabilityArgs, DnsCapability, PortMapping } from "./cni-invocation.ts";
import { capabilityArgs, cniArgs, pluginStdin } from "./cni-invocation.ts";
import { ipRanges } from "./pod-cidr.ts";
import type { CniInterface, CniResult } from "./cni-result.ts";
import { parseResult, podIps } from "./cni-result.ts";
import { sweepCniRules } from "./iptables-sweep.ts";
import { isNetns } from "./netns.ts";
import { runCommand } from "../../oci-runtime/foundation/run-command.ts";
import { KeyedMutex } from "../../oci-runtime/foundation/keyed-mutex.ts";

export interface NetworkManagerOptions {
  confDir: string;
  binDirs: string[];
  /** Runtime state dir; the cache goes to <stateDir>/cni-cache unless cacheDir is set. */
  stateDir: string;
  /** Where ADD inputs/results are cached. Put it on persistent storage if IPAM leases outlive reboots. */
  cacheDir?: string;
  /** A plugin still running after this long is killed (default 60 s). */
  pluginTimeoutMs?: number;
  /** Interface name inside the pod (default "eth0"). */
  ifName?: string;
  log?: Logger;
  /** Process runner, replaceable for fault-injection tests. */
  runner?: Runner;
  /**
   * After a DEL without a network namespace, remove nat rules the plugins
   * tagged with this network and sandbox id (default true): the bridge
   * plugin shipped by Debian only removes its ipMasq chain while it can
   * still see the pod's interface.
   */
  sweepIptables?: boolean;
}

export interface NetworkStatus {
  ready: boolean;
  reason?: string;
  message?: string;
}

export interface SetUpRequest {
  sandboxId: string;
  netnsPath: string;
  podName: string;
  podNamespace: string;
  podUid: string;
  portMappings?: PortMapping[];
  dns?: DnsCapability;
  bandwidth?: BandwidthCapability;
  /** More capability args (for example "ips", "mac"), passed to plugins declaring them. */
  extraCapabilities?: Record<string, unknown>;
  /** The RPC's deadline or cancellation: a running ADD is killed with its process group, and the ADDs so far are deleted. */
  signal?: AbortSignal | undefined;
  /**
   * Return as soon as the plugins have answered; the result goes to the cache while the caller
   * goes on, and `saved` settles when it is on disk. The caller must await `saved` (and tear the
   * network down if it rejects). Calls for the same sandbox wait for the write.
   */
  deferResultSave?: boolean;
  /**
   * setUp may be called before the pod's network namespace exists: it writes the cache entry (so a
   * crash from here on is undone by DEL), then waits for `ready`, which gives the namespace's path
   * once it is made. If `ready` rejects, no plugin runs, the entry is removed and setUp rejects with its reason.
   */
  ready?: Promise<string>;
}

export interface SetUpResult {
  /** Pod IPs without prefix, primary first (IPv4 before IPv6). */
  ips: string[];
  interfaces: CniInterface[];
  result: CniResult;
  network: string;
  /** With deferResultSave: settles when the cached result is on disk. */
  saved?: Promise<void>;
}

export const NETWORK_NOT_READY = "NetworkPluginNotReady";

const versionAtLeast = (v: string, min: string) => {
  const a = v.split(".").map(Number);
  const b = min.split(".").map(Number);
  for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  return true;
};

export class NetworkManager {
  readonly confDir: string;
  readonly binDirs: string[];
  readonly ifName: string;
  readonly cache: CniCache;
  private readonly exec: PluginExec;
  private readonly log: Logger;
  private readonly runner: Runner;
  private readonly sweepIptables: boolean;
  private loaded: { dirMtimeMs: number; fileMtimeMs: number; config?: NetworkConfigList; problem?: string } | undefined;
  private readonly locks = new KeyedMutex();
  /** Result writes still going on (deferResultSave), by sandbox id: later calls for it wait for them. */
  private readonly saving = new Map<string, Promise<void>>();
  /** The pod CIDR from UpdateRuntimeConfig ("" for none): offered to plugins as the "ipRanges" capability. */
  podCidr = "";

  constructor(opts: NetworkManagerOptions) {
    this.confDir = opts.confDir;
    this.binDirs = opts.binDirs;
    this.ifName = opts.ifName ?? "eth0";
    this.cache = new CniCache(opts.cacheDir ?? join(opts.stateDir, "cni-cache"));
    this.exec = new PluginExec(opts.binDirs, opts.pluginTimeoutMs ?? 60_000, opts.runner);
    this.log = opts.log ?? rootLog.child({ component: "cni" });
    this.runner = opts.runner ?? runCommand;
    this.sweepIptables = opts.sweepIptables ?? true;
  }

  /** The current network config (re-read when conf_dir or the chosen file changed), or undefined. */
  config(): NetworkConfigList | undefined {
    return this.load().config;
  }

  private load(): NonNullable<NetworkManager["loaded"]> {
    const dirMtimeMs = mtimeOf(this.confDir);
    const cur = this.loaded;
    if (cur && cur.dirMtimeMs === dirMtimeMs && (!cur.config || mtimeOf(cur.config.file) === cur.fileMtimeMs)) return cur;
    const { config, skipped } = loadNetworkConfig(this.confDir);
    for (const s of skipped) this.log.warn("skipping invalid cni config", { file: s.file, error: s.error });
    const problem = config ? undefined
      : `no valid cni network config found in ${this.confDir}` + (skipped.length ? ` (${skipped.map((s) => `${s.file}: ${s.error}`).join("; ")})` : "");
    if (config && config.file !== cur?.config?.file) this.log.info("using cni network config", { file: config.file, network: config.name });
    this.loaded = { dirMtimeMs, fileMtimeMs: config ? mtimeOf(config.file) : -1, ...(config ? { config } : {}), ...(problem ? { problem } : {}) };
    return this.loaded;
  }

  /** NetworkReady condition for the CRI Status RPC. Cheap: re-reads conf_dir only when it changed. */
  status(): NetworkStatus {
    const l = this.load();
    if (!l.config) return { ready: false, reason: NETWORK_NOT_READY, message: `network plugin not ready: ${l.problem}` };
    const missing = l.config.plugins.map((p) => p.type).filter((t) => !findPlugin(this.binDirs, t));
    if (missing.length) {
      return { ready: false, reason: NETWORK_NOT_READY, message: `network plugin not ready: cni plugin ${missing.join(", ")} of ${l.config.file} not found in ${this.binDirs.join(", ")}` };
    }
    return { ready: true };
  }

  /** Runs ADD for the pod. On any failure the plugins that ran are undone with DEL before the error is thrown. */
  async setUp(req: SetUpRequest): Promise<SetUpResult> {
    checkSandboxId(req.sandboxId);
    if (!req.netnsPath) throw invalidArgument(`network namespace path of sandbox ${req.sandboxId} is empty`);
    return this.locks.run(req.sandboxId, () => this.add(req));
  }

  private async add(req: SetUpRequest): Promise<SetUpResult> {
    const network = this.config();
    if (!network) throw failedPrecondition(`cannot set up network of sandbox ${req.sandboxId}: ${this.load().problem}`);
    await this.saving.get(req.sandboxId);
    const stale = await this.cache.read(req.sandboxId);
    if (stale?.result) throw failedPrecondition(`network of sandbox ${req.sandboxId} is already set up; tear it down first`);
    if (stale) {
      // An ADD that never finished (daemon crash): undo it with the config it ran with.
      const errors = await this.del(stale, stale.netnsPath, stale.network.plugins.length, undefined);
      if (errors.length) throw internal(`cannot clean up unfinished network setup of sandbox ${req.sandboxId}: ${errors.map((e) => e.message).join("; ")}`);
      await this.cache.remove(req.sandboxId);
    }
    const ctx = { network: network.name, sandboxId: req.sandboxId };
    for (const p of network.plugins) await this.exec.negotiate(p.type, network.cniVersion, ctx);

    const entry: CacheEntry = {
      kind: "berth-cni-cache",
      version: 1,
      sandboxId: req.sandboxId,
      ifName: this.ifName,
      netnsPath: req.netnsPath,
      cniArgs: cniArgs(req.sandboxId, req),
      network,
      capabilityArgs: capabilityArgs({
        ...(req.portMappings ? { portMappings: req.portMappings } : {}),
        ...(req.dns ? { dns: req.dns } : {}),
        ...(req.bandwidth ? { bandwidth: req.bandwidth } : {}),
        ...(req.extraCapabilities || this.podCidr
          ? { extra: { ...(this.podCidr ? { ipRanges: ipRanges(this.podCidr) } : {}), ...req.extraCapabilities } } : {}),
      }),
      result: null,
    };
    await this.cache.write(entry);
    if (req.ready) {
      let netnsPath: string;
      try {
        netnsPath = await req.ready;
      } catch (err) {
        await this.cache.remove(req.sandboxId);
        throw err;
      }
      if (netnsPath !== entry.netnsPath) {
        entry.netnsPath = netnsPath;
        await this.cache.write(entry);
      }
    }

    let prev: unknown;
    let ran = 0;
    try {
      for (const plugin of network.plugins) {
        ran++;
        const out = await this.exec.invoke({
          command: "ADD", plugin: plugin.type, containerId: req.sandboxId, netns: entry.netnsPath,
          ifName: this.ifName, cniArgs: entry.cniArgs, network: network.name,
          stdin: pluginStdin(network, plugin, entry.capabilityArgs, prev),
          signal: req.signal,
        });
        if (out !== undefined) prev = out;
      }
      if (prev === undefined) throw internal(`cni network "${network.name}" returned no result for sandbox ${req.sandboxId}`);
      let result: CniResult;
      try {
        result = parseResult(prev);
      } catch (err) {
        throw internal(`cni network "${network.name}" returned an invalid result for sandbox ${req.sandboxId}: ${(err as Error).message}`, err);
      }
      entry.result = prev;
      const ips = podIps(result, this.ifName);
      if (req.deferResultSave) {
        const saved = this.cache.write(entry);
        const settled = saved.then(() => {}, () => {});
        this.saving.set(req.sandboxId, settled);
        void settled.then(() => { if (this.saving.get(req.sandboxId) === settled) this.saving.delete(req.sandboxId); });
        this.log.debug("pod network set up", { sandboxId: req.sandboxId, network: network.name, ips });
        return { ips, interfaces: result.interfaces, result, network: network.name, saved };
      }
      await this.cache.write(entry);
      this.log.debug("pod network set up", { sandboxId: req.sandboxId, network: network.name, ips });
      return { ips, interfaces: result.interfaces, result, network: network.name };
    } catch (err) {
      await this.rollback(entry, ran, prev, err);
      throw err instanceof BerthError ? err : internal(`cannot set up network of sandbox ${req.sandboxId}: ${(err as Error).message}`, err);
    }
  }

  private async rollback(entry: CacheEntry, ran: number, prev: unknown, cause: unknown): Promise<void> {
    const errors = await this.del(entry, entry.netnsPath, ran, prev);
    if (errors.length) {
      // Keep the cache entry so a later tearDown retries the DEL.
      this.log.error("rollback of failed cni add left errors", { sandboxId: entry.sandboxId, cause, errors: errors.map((e) => e.message) });
      return;
    }
    await this.cache.remove(entry.sandboxId);
  }

  /** DEL for the first `count` plugins, in reverse; returns the errors that matter (not "already gone"). */
  private async del(entry: CacheEntry, netnsPath: string, count: number, prevResult: unknown): Promise<Error[]> {
    const { network } = entry;
    const netns = netnsPath && await isNetns(netnsPath) ? netnsPath : "";
    const withPrev = versionAtLeast(network.cniVersion, "0.4.0") && prevResult !== undefined && prevResult !== null;
    const errors: Error[] = [];
    for (let i = count - 1; i >= 0; i--) {
      const plugin = network.plugins[i]!;
      try {
        await this.exec.invoke({
          command: "DEL", plugin: plugin.type, containerId: entry.sandboxId, netns,
          ifName: entry.ifName, cniArgs: entry.cniArgs, network: network.name,
          stdin: pluginStdin(network, plugin, entry.capabilityArgs, withPrev ? prevResult : undefined),
        });
      } catch (err) {
        // Only a plugin's own "not found" means already gone; a missing plugin binary is a real error.
        if (err instanceof BerthError && err.code === Code.INTERNAL && isGoneError(err)) {
          this.log.debug("cni del: already gone", { sandboxId: entry.sandboxId, plugin: plugin.type, error: (err as Error).message });
          continue;
        }
        errors.push(err as Error);
      }
    }
    if (!netns && this.sweepIptables && errors.length === 0) {
      const swept = await sweepCniRules(network.name, entry.sandboxId, this.runner);
      if (swept.removed) this.log.info("removed nat rules left by cni del without netns", { sandboxId: entry.sandboxId, rules: swept.removed });
      for (const e of swept.errors) errors.push(internal(`cannot remove nat rule of sandbox ${entry.sandboxId}: ${e}`));
    }
    return errors;
  }

  /**
   * Runs DEL for the pod's network with the cached config. Idempotent: a
   * sandbox without a cache entry (never set up, or already torn down) is a
   * no-op, and a netns that is already gone is fine (CNI_NETNS is then empty).
   * The cache entry is removed only when every plugin's DEL succeeded.
   */
  async tearDown(sandboxId: string, netnsPath?: string): Promise<void> {
    checkSandboxId(sandboxId);
    return this.locks.run(sandboxId, async () => {
      await this.saving.get(sandboxId);
      const entry = await this.cache.read(sandboxId);
      if (!entry) return;
      const errors = await this.del(entry, netnsPath ?? entry.netnsPath, entry.network.plugins.length, entry.result);
      if (errors.length) {
        throw errors.length === 1 && errors[0] instanceof BerthError ? errors[0]
          : internal(`cannot tear down network of sandbox ${sandboxId}: ${errors.map((e) => e.message).join("; ")}`);
      }
      await this.cache.remove(sandboxId);
      this.log.debug("pod network torn down", { sandboxId, network: entry.network.name });
    });
  }

  /** Runs CHECK (cniVersion >= 0.4.0, unless the config disables it) against the cached result. */
  async check(sandboxId: string, netnsPath?: string): Promise<void> {
    checkSandboxId(sandboxId);
    return this.locks.run(sandboxId, async () => {
      await this.saving.get(sandboxId);
      const entry = await this.cache.read(sandboxId);
      if (!entry || entry.result === null) throw notFound(`network of sandbox ${sandboxId} is not set up`);
      const { network } = entry;
      if (network.disableCheck || !versionAtLeast(network.cniVersion, "0.4.0")) return;
      const netns = netnsPath ?? entry.netnsPath;
      for (const plugin of network.plugins) {
        await this.exec.invoke({
          command: "CHECK", plugin: plugin.type, containerId: sandboxId, netns,
          ifName: entry.ifName, cniArgs: entry.cniArgs, network: network.name,
          stdin: pluginStdin(network, plugin, entry.capabilityArgs, entry.result),
        });
      }
    });
  }

  /** The cached ADD outcome of a sandbox (after a restart: its IPs), or undefined if it has none. */
  async cached(sandboxId: string): Promise<SetUpResult | undefined> {
    await this.saving.get(sandboxId);
    const entry = await this.cache.read(sandboxId);
    if (!entry || entry.result === null) return undefined;
    const result = parseResult(entry.result);
    return { ips: podIps(result, entry.ifName), interfaces: result.interfaces, result, network: entry.network.name };
  }

  /** Sandbox ids that have cached network state (for recovery and leak checks). */
  listCached(): Promise<string[]> {
    return this.cache.list();
  }
}

function mtimeOf(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return -1;
  }
}

export type { CapabilityArgs };
