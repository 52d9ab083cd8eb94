// What the sandbox lifecycle operations (sandbox/ops/*) are given: the record store, the OS
// (files, mounts, namespaces and their pins, clock, ids), CNI, the infra runtime and the pod's containers.
// The daemon passes the real ones (realSandboxOs); unit specs pass fakes.
import { randomHex } from "../../oci-runtime/foundation/builtins.ts";
import { hostname } from "node:os";
import { mkdir, readdir, realpath, rm, statfs } from "node:fs/promises";
import { join } from "node:path";
import { PodSandboxConfigSchema, PodSandboxState, type PodSandboxConfig } from "../../proto/gen/runtime/v1/api_pb.js";
import type { Config } from "../config.ts";
import type { CreateCache } from "../create-cache.ts";
import type { Logger } from "../../oci-runtime/foundation/log.ts";
import { nowNs } from "../../oci-runtime/foundation/clock.ts";
import {
  createPodNamespaces, createPodUserns, listPrepared, mountHelperPath, pinPodNamespaces, podUsernsDir, removeUnder, unpinPodNamespaces,
  type PodNamespacePins, type PodUserns,
} from "../../oci-runtime/mounts/mount-helper.ts";
import type { MountFeatures } from "../../oci-runtime/mounts/features.ts";
import { createNetns, listNetns, removeNetns, reserveNetnsPin } from "../network/netns.ts";
import type { NetworkManager } from "../network/cni.ts";
import { mountShm, unmountShm, writePodFiles, type PodFilesInput } from "../network/pod-files.ts";
import type { Store } from "../stores/store.ts";
import { loadMessage } from "../stores/proto-record.ts";
import type { SandboxRecord } from "./sandbox-record.ts";
import { criSandboxState, expectsInfra, isSandboxVisible } from "./state.ts";

/** What the sandbox operations need from the OCI runtime layer for infra processes (pods that share a PID namespace). */
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

/** What the sandbox operations need from the container side (stop/remove a pod's containers). */
export interface PodContainers {
  stopAll(sandboxId: string): Promise<void>;
  removeAll(sandboxId: string): Promise<void>;
}

/** The OS as the sandbox operations use it. Every release is idempotent. */
export interface SandboxOs {
  now(): bigint;
  newId(): string;
  hostname(): string;
  mkdirPrivate(path: string): Promise<void>;
  /** rm -rf */
  removeAll(path: string): Promise<void>;
  readdir(path: string): Promise<string[]>;
  mountShm(path: string, sizeBytes: number): Promise<void>;
  unmountShm(path: string): Promise<void>;
  writePodFiles(input: PodFilesInput): Promise<unknown>;
  /** A pinned network namespace named `name`; returns its path. */
  createNetns(name: string): Promise<string>;
  removeNetns(path: string): Promise<void>;
  listNetns(): Promise<string[]>;
  /** Pins the pod's user namespace (and, with `withNetns`, a network namespace it owns). */
  createUserns(podId: string, u: PodUserns, withNetns: boolean): Promise<{ usernsPath: string; netnsPath: string }>;
  removeUserns(podId: string): Promise<void>;
  listUserns(): Promise<string[]>;
  /** A pod without an infra process: creates its IPC and UTS namespaces (hostname, sysctls) pinned as files. Undoes itself on failure. */
  pinNamespaces(p: PodNamespacePins): Promise<void>;
  /**
   * A pod without its own user namespace: its /dev/shm (unless `shmPath` is ""), its network
   * namespace (with `netnsName`; returns the pin's path) and, with `pins`, its IPC and UTS
   * namespaces, in one helper call. Undoes itself on failure. Optional: without it (or for a user
   * namespaced pod) mountShm, createNetns and pinNamespaces are called one by one.
   */
  createPodNamespaces?(p: { shmPath: string; shmSize: number; netnsName: string; pins?: Omit<PodNamespacePins, "usernsPath" | "netnsPath"> }): Promise<{ netnsPath: string }>;
  /** Unmounts and deletes pins (idempotent; "" entries are skipped). */
  unpinNamespaces(paths: string[]): Promise<void>;
  /** Whether every given pin ("" skipped) is a mounted namespace. */
  pinsAlive(paths: string[]): Promise<boolean>;
}

export type PodNetwork = Pick<NetworkManager, "setUp" | "tearDown" | "listCached">;

export interface SandboxDeps {
  config: Config;
  log: Logger;
  store: Store<SandboxRecord>;
  creates: CreateCache;
  os: SandboxOs;
  network: PodNetwork;
  infra: InfraRuntime;
  containers: PodContainers;
  /** Mount features per handler from the daemon's start-up probe (user namespaces need them). */
  mountFeatures: ReadonlyMap<string, MountFeatures>;
}

export function realSandboxOs(config: Config): SandboxOs {
  const helper = mountHelperPath(config.runtime.io_helper);
  return {
    now: nowNs,
    newId: () => randomHex(32),
    hostname,
    mkdirPrivate: async (path) => { await mkdir(path, { recursive: true, mode: 0o700 }); },
    removeAll: (path) => rm(path, { recursive: true, force: true }),
    readdir: (path) => readdir(path),
    mountShm: (path, sizeBytes) => mountShm(path, sizeBytes, helper),
    unmountShm,
    writePodFiles,
    createNetns: (name) => createNetns({ stateDir: config.state, helper }, name),
    removeNetns,
    listNetns: () => listNetns(config.state),
    createUserns: (podId, u, withNetns) => createPodUserns(helper, config.state, podId, u, withNetns),
    removeUserns: (podId) => removeUnder(helper, podUsernsDir(config.state, podId)),
    listUserns: () => listPrepared(config.state, "pods"),
    pinNamespaces: (p) => pinPodNamespaces(helper, p),
    createPodNamespaces: async (p) => {
      let shmDir = "";
      if (p.shmPath) {
        await mkdir(p.shmPath, { recursive: true, mode: 0o755 });
        shmDir = await realpath(p.shmPath);
      }
      const netnsPath = p.netnsName ? await reserveNetnsPin({ stateDir: config.state }, p.netnsName) : "";
      try {
        await createPodNamespaces(helper, { shmDir, shmBytes: p.shmSize, netnsPin: netnsPath, ...(p.pins ? { pins: p.pins } : {}) });
      } catch (err) {
        if (netnsPath) await removeNetns(netnsPath).catch(() => {});
        throw err;
      }
      return { netnsPath };
    },
    unpinNamespaces: (paths) => unpinPodNamespaces(helper, paths),
    pinsAlive,
  };
}

/** statfs f_type of nsfs (linux/magic.h NSFS_MAGIC): a pin that is still a mounted namespace. */
const NSFS_MAGIC = 0x6e736673;

/** Whether every pin ("" skipped) is still a mounted namespace. */
export async function pinsAlive(paths: string[]): Promise<boolean> {
  for (const p of paths) {
    if (!p) continue;
    const st = await statfs(p).catch(() => undefined);
    if (st?.type !== NSFS_MAGIC) return false;
  }
  return true;
}

/** The pins of a pod without an infra process ("" where it uses the host's namespace). */
export const pinPathsOf = (rec: SandboxRecord): string[] => rec.pins ? [rec.pins.ipc, rec.pins.uts] : [];

/**
 * Whether what holds a ready pod's namespaces is still there: its infra process, or, for a pod
 * without one, its pinned IPC and UTS namespaces.
 */
export async function podHeld(rec: SandboxRecord, infra: Pick<InfraRuntime, "alive">, alive: (paths: string[]) => Promise<boolean> = pinsAlive): Promise<boolean> {
  return rec.pins ? alive(pinPathsOf(rec)) : infra.alive(rec);
}

/** The sandboxes as the rest of berth reads them: lookups, config, and the state to report. */
export class Sandboxes {
  readonly store: Store<SandboxRecord>;
  private readonly infra: Pick<InfraRuntime, "alive">;
  private readonly pinsAlive: (paths: string[]) => Promise<boolean>;

  constructor(o: { store: Store<SandboxRecord>; infra: Pick<InfraRuntime, "alive">; pinsAlive?: (paths: string[]) => Promise<boolean> }) {
    this.store = o.store;
    this.infra = o.infra;
    this.pinsAlive = o.pinsAlive ?? pinsAlive;
  }

  /** Fetches a sandbox by id or unique prefix (NOT_FOUND otherwise). */
  get(id: string): SandboxRecord {
    return this.store.get(id, "pod_sandbox_id");
  }

  list(): SandboxRecord[] {
    return this.store.list().filter((r) => isSandboxVisible(r.state));
  }

  podConfig(rec: SandboxRecord): PodSandboxConfig {
    return loadMessage(PodSandboxConfigSchema, rec.config, `pod sandbox ${rec.id}`);
  }

  /** The CRI state of a sandbox. */
  criState(rec: SandboxRecord): PodSandboxState {
    return criSandboxState(rec.state);
  }

  /** The state to report: a ready sandbox whose infra process died (or whose pins are gone) is not ready. */
  async liveState(rec: SandboxRecord): Promise<PodSandboxState> {
    if (expectsInfra(rec.state) && !(await podHeld(rec, this.infra, this.pinsAlive))) return PodSandboxState.SANDBOX_NOTREADY;
    return this.criState(rec);
  }
}

/** The pod directory of a sandbox id. */
export const podDirOf = (config: Config, id: string) => join(config.state, "sandboxes", id);

/** Where a pod without an infra process has its IPC and UTS namespaces pinned (inside its pod directory). */
export const podPinPaths = (podDir: string): [ipc: string, uts: string] => [join(podDir, "ns", "ipc"), join(podDir, "ns", "uts")];
