// What the container lifecycle operations (container/ops/*) are given: the record store, the OS
// (files, signals, clock, ids), the OCI runtime, conmon, cgroups, berth's own mounts, the image
// service, the spec builder (one opaque call) and the pod lookups. The daemon passes the real
// ones (realContainerDeps); unit specs pass fakes.
import { randomHex } from "../../oci-runtime/foundation/builtins.ts";
import { mkdir, readFile, rm, stat } from "node:fs/promises";
import { dirname, join, posix } from "node:path";
import { findExecutable } from "../../oci-runtime/foundation/executable.ts";
import { ContainerConfigSchema, LinuxContainerResourcesSchema, type ContainerConfig, type LinuxContainerResources, type PodSandboxConfig } from "../../proto/gen/runtime/v1/api_pb.js";
import {
  createContainer as conmonCreate, detectCgroupLayout, readExitFile, recover as conmonRecover, reopenLog, removeCgroup, wasOomKilled,
  watchExits, writeBundle, conmonFiles, isConmonAlive, readPidFile,
  type ExitInfo, type ExitWatcher, type OciRuntime,
} from "../../oci-runtime/index.ts";
import type { ConmonCreateOptions, Recovered } from "../../oci-runtime/monitor/conmon.ts";
import type { Image, ImageService } from "../../image-service/image-service.ts";
import type { Config } from "../config.ts";
import { CreateCache } from "../create-cache.ts";
import type { Logger } from "../../oci-runtime/foundation/log.ts";
import { nowNs } from "../../oci-runtime/foundation/clock.ts";
import { Cleanup } from "../../oci-runtime/foundation/cleanup.ts";
import { ContainerEventType, containerEvent, type ContainerEvent, type EventBus } from "../events/index.ts";
import { conmonCgroupIsPerContainer, conmonCgroupPath } from "../../oci-runtime/monitor/conmon-cgroup.ts";
import { warmCgroupAttach } from "../../oci-runtime/cgroups/attach-warm.ts";
import { type ResolvedDevice, applyDevices, requestedDevices, resolveDevices } from "../../oci-runtime/cdi/cdi.ts";
import type { MountFeatures } from "../../oci-runtime/mounts/features.ts";
import { containerMountsDir, mountHelperPath, removeUnder } from "../../oci-runtime/mounts/mount-helper.ts";
import { prepareContainerMounts, releaseBindClones, releaseContainerMounts, type PrepareInput } from "../../oci-runtime/mounts/prepare.ts";
import type { Store } from "../stores/store.ts";
import { loadMessage } from "../stores/proto-record.ts";
import type { Sandboxes } from "../sandbox/deps.ts";
import type { SandboxRecord } from "../sandbox/sandbox-record.ts";
import type { ContainerRecord } from "./container-record.ts";
import { checkContainerUserns, containerSpecInput, resolveContainerSecurity, resolveContainerUser } from "./spec-input.ts";
import { buildContainerSpec } from "../../oci-runtime/bundle-spec/container-spec.ts";
import { writeBundleSyncLater } from "../../oci-runtime/bundle-spec/bundle.ts";
import { ImageUserFiles } from "../../oci-runtime/bundle-spec/user.ts";
import { checkImageMounts, mountImageVolumes, usernsImageVolumeDir, type ImageVolumeMount } from "./image-volumes.ts";
import { isVisible } from "./state.ts";
import { refreshContainer } from "./ops/exit.ts";

type Spec = Awaited<ReturnType<typeof buildContainerSpec>>;
export type ContainerSecurity = Awaited<ReturnType<typeof resolveContainerSecurity>>;
export type ContainerUser = Awaited<ReturnType<typeof resolveContainerUser>>;

/** The OS as the container operations use it. Every removal is idempotent. */
export interface ContainerOs {
  now(): bigint;
  newId(): string;
  /** process.kill; throws when the process is gone. */
  kill(pid: number, signal: NodeJS.Signals): void;
  mkdirPrivate(path: string): Promise<void>;
  /** kubelet's log tree (0755), not berth's. */
  mkdirShared(path: string): Promise<void>;
  /** rm -rf */
  removeAll(path: string): Promise<void>;
  readFile(path: string): Promise<string>;
  writeBundle(bundle: string, spec: unknown): Promise<void>;
  /** Writes the bundle's config.json in place at once; `synced` settles when it is durable. */
  stageBundle(bundle: string, spec: unknown): Promise<{ synced: Promise<void> }>;
  /** The inode of a file, undefined when it is missing. */
  inode(path: string): Promise<number | undefined>;
}

/** conmon, the per-container monitor. */
export interface ContainerMonitor {
  create(o: ConmonCreateOptions): Promise<{ pid: number; conmonPid: number }>;
  /** conmon's pid from its pid file in the bundle (a create interrupted before it was recorded). */
  pidOf(bundle: string): Promise<number | undefined>;
  alive(pid: number): Promise<boolean>;
  readExit(id: string): Promise<ExitInfo | undefined>;
  oomKilled(bundle: string): Promise<boolean>;
  recover(rec: ContainerRecord): Promise<Recovered>;
  reopenLog(bundle: string, id: string): Promise<void>;
}

export interface ContainerCgroups {
  isV2(): Promise<boolean>;
  /** Removes a cgroup (all controllers); returns the directories left behind. */
  remove(path: string): Promise<string[]>;
  /** The cgroup conmon goes to for `conmon_cgroup`. */
  conmonPath(cgroupParent: string, id: string): string;
  /** The per-container conmon cgroup to remove with the container, if conmon_cgroup makes one. */
  perContainerConmonPath(cgroupsPath: string, id: string): string | undefined;
  layout(): Promise<Awaited<ReturnType<typeof detectCgroupLayout>>>;
  /** Starts the kernel's wait for cgroup moves now, so the monitor's and the runtime's moves find it done (oci-runtime/cgroups/attach-warm.ts). */
  warmAttach(): void;
}

/** berth's own mounts for a container (idmapped clones, rro by berth) and its image volumes. */
export interface ContainerMounts {
  /** Prepares the mounts `spec` needs and rewrites it; returns their directory ("" when none). */
  prepare(i: Omit<PrepareInput, "helper" | "stateDir">): Promise<string>;
  /** Unmounts the bind clones once the runtime holds its own copies. */
  releaseBindClones(dir: string): Promise<void>;
  /** Unmounts and removes everything prepared for a container. */
  release(id: string): Promise<void>;
  /** Unmounts everything under a user-namespaced container's image volume dir (idmapped layer clones left by a crash too) and removes it. */
  releaseImageVolumes(id: string): Promise<void>;
  /** Mounts the image volumes of `cfg`; returns `cfg` without them and the bind mounts to add. */
  mountImageVolumes(id: string, bundle: string, cfg: ContainerConfig, sandbox: SandboxRecord): Promise<{ cfg: ContainerConfig; mounts: ImageVolumeMount[] }>;
}

export type ContainerImages = Pick<ImageService, "get" | "createRootfs" | "removeRootfs" | "removeImageVolumes" | "upperDir">;

/** The spec builder: one opaque call (oci-runtime owns how a spec is made). */
export interface ContainerSpecs {
  /** Checks the request against the image, pod and host before anything is created (INVALID_ARGUMENT and friends). */
  check(cfg: ContainerConfig, pod: PodSandboxConfig, sandbox: SandboxRecord): Promise<{ security: ContainerSecurity; devices: ResolvedDevice[] }>;
  /** The process user (from the rootfs' passwd and group files) and the OCI spec, the CDI devices check resolved applied. */
  build(i: {
    id: string; cfg: ContainerConfig; pod: PodSandboxConfig; sandbox: SandboxRecord; image: Image; rootfs: string;
    security: ContainerSecurity; devices: ResolvedDevice[]; cgroupsPath: string; targetPid?: number; runtime: OciRuntime;
    /** Settles once `rootfs` is mounted: the build reads the image's /etc/passwd there only when it has not kept them. */
    rootfsReady?: Promise<unknown>;
  }): Promise<{ spec: Spec; user: ContainerUser }>;
}

/** Publishes container events (with the pod and container statuses evented PLEG wants). */
export interface ContainerEvents {
  publish(rec: ContainerRecord, type: ContainerEventType): void;
}

/** The exit watcher: started by the daemon, told to forget removed containers. */
export interface ExitWatch {
  forget(id: string): void;
}

export interface ContainerDeps {
  config: Config;
  log: Logger;
  store: Store<ContainerRecord>;
  creates: CreateCache;
  exitDir: string;
  socketDir: string;
  /**
   * berth-exec next to runtime.io_helper, for ExecSync, when it is installed (found once at
   * start); an install without it (built by hack/build-helpers.sh) keeps the old behaviour.
   */
  execReaper?: string;
  os: ContainerOs;
  runtimes: { get(handler: string): OciRuntime };
  monitor: ContainerMonitor;
  cgroups: ContainerCgroups;
  mounts: ContainerMounts;
  images: ContainerImages;
  specs: ContainerSpecs;
  sandboxes: Pick<Sandboxes, "get" | "liveState" | "podConfig"> & { store: Pick<Sandboxes["store"], "tryGet"> };
  events: ContainerEvents;
  exits: ExitWatch;
  /** Mount features per handler from the daemon's start-up probe. */
  mountFeatures: ReadonlyMap<string, MountFeatures>;
}

export function realContainerOs(): ContainerOs {
  return {
    now: nowNs,
    newId: () => randomHex(32),
    kill: (pid, signal) => { process.kill(pid, signal); },
    mkdirPrivate: async (path) => { await mkdir(path, { recursive: true, mode: 0o700 }); },
    mkdirShared: async (path) => { await mkdir(path, { recursive: true, mode: 0o755 }); },
    removeAll: (path) => rm(path, { recursive: true, force: true }),
    readFile: (path) => readFile(path, "utf8"),
    writeBundle: (bundle, spec) => writeBundle(bundle, spec as never),
    stageBundle: (bundle, spec) => writeBundleSyncLater(bundle, spec as never),
    inode: async (path) => (await stat(path).catch(() => undefined))?.ino,
  };
}

/** The exit watcher over conmon's exit files: `start` begins watching, `close` ends it. */
export class ExitFiles implements ExitWatch {
  private watcher: ExitWatcher | undefined;
  private readonly exitDir: string;
  constructor(exitDir: string) { this.exitDir = exitDir; }
  start(onExit: (id: string, info: ExitInfo) => void): void { this.watcher ??= watchExits(this.exitDir, onExit); }
  close(): void { this.watcher?.close(); this.watcher = undefined; }
  forget(id: string): void { this.watcher?.forget(id); }
}

/** Builds the real dependencies of the container operations. */
export function realContainerDeps(o: {
  config: Config; log: Logger; store: Store<ContainerRecord>; images: ImageService; runtimes: { get(handler: string): OciRuntime };
  sandboxes: ContainerDeps["sandboxes"]; events: ContainerEvents; exits: ExitFiles; mountFeatures: ReadonlyMap<string, MountFeatures>;
}): ContainerDeps {
  const { config } = o;
  const exitDir = join(config.state, "exits");
  const helper = mountHelperPath(config.runtime.io_helper);
  const execReaper = findExecutable(join(dirname(config.runtime.io_helper), "berth-exec"));
  const userFiles = new ImageUserFiles();
  const cgroups: ContainerCgroups = {
    isV2: async () => (await detectCgroupLayout()).mode === "v2",
    remove: async (path) => removeCgroup(await detectCgroupLayout(), path),
    conmonPath: (parent, id) => conmonCgroupPath(config.runtime.conmon_cgroup, parent, id),
    perContainerConmonPath: (cgroupsPath, id) =>
      conmonCgroupIsPerContainer(config.runtime.conmon_cgroup) && cgroupsPath ? conmonCgroupPath("pod", posix.dirname(cgroupsPath), id) : undefined,
    layout: () => detectCgroupLayout(),
    warmAttach: warmCgroupAttach,
  };
  return {
    config,
    log: o.log.child({ component: "container" }),
    store: o.store,
    creates: new CreateCache(config.runtime.create_cache_ttl * 1000),
    exitDir,
    socketDir: join(config.state, "sockets"),
    ...(execReaper ? { execReaper } : {}),
    os: realContainerOs(),
    runtimes: o.runtimes,
    monitor: {
      create: (c) => conmonCreate(c),
      pidOf: (bundle) => readPidFile(conmonFiles(bundle).conmonPidFile),
      alive: isConmonAlive,
      readExit: (id) => readExitFile(exitDir, id),
      oomKilled: wasOomKilled,
      recover: (rec) => conmonRecover({ id: rec.id, bundle: rec.bundle, exitDir, persistDir: rec.bundle }),
      reopenLog,
    },
    cgroups,
    mounts: {
      prepare: (i) => prepareContainerMounts({ ...i, helper, stateDir: config.state }),
      releaseBindClones: (dir) => releaseBindClones(helper, dir),
      release: (id) => releaseContainerMounts(helper, containerMountsDir(config.state, id)),
      releaseImageVolumes: (id) => removeUnder(helper, usernsImageVolumeDir(config.state, id)),
      // Their undo is the container's teardown (images.removeImageVolumes by owner), not this Cleanup.
      mountImageVolumes: (id, bundle, cfg, sandbox) => mountImageVolumes(o.images, id, bundle, cfg, new Cleanup(o.log), {
        stateDir: config.state,
        ...(sandbox.userns ? { userns: { helper, path: sandbox.userns.path, hostUid: sandbox.userns.uids.hostId, hostGid: sandbox.userns.gids.hostId } } : {}),
      }),
    },
    images: o.images,
    specs: {
      async check(cfg, pod, sandbox) {
        const security = await resolveContainerSecurity(cfg, pod, config.runtime.seccomp_default);
        checkContainerUserns(cfg, sandbox);
        checkImageMounts(o.images, cfg);
        const devices = await resolveDevices(config.cdi.spec_dirs, requestedDevices(cfg.CDIDevices, cfg.annotations));
        return { security, devices };
      },
      async build(i) {
        const user = await resolveContainerUser(i.cfg, i.image, () => userFiles.get(i.image.id, i.rootfs, i.rootfsReady ?? Promise.resolve()));
        const spec = await buildContainerSpec(containerSpecInput({
          id: i.id, cfg: i.cfg, pod: i.pod, sandbox: i.sandbox, image: i.image, rootfs: i.rootfs, security: i.security, user,
          cgroupV2: await cgroups.isV2(), shmSize: config.runtime.shm_size,
          ...(i.targetPid ? { targetPid: i.targetPid } : {}),
          supportsRecursiveReadOnly: (o.mountFeatures.get(i.runtime.name)?.recursiveReadOnly ?? "none") !== "none",
        }));
        await applyDevices(spec, i.devices);
        return { spec, user };
      },
    },
    sandboxes: o.sandboxes,
    events: o.events,
    exits: o.exits,
    mountFeatures: o.mountFeatures,
  };
}

/**
 * Publishes container events, attaching the statuses `statuses` builds; a failure is logged, never
 * thrown. With no subscriber (kubelet without evented PLEG) nothing is built: the statuses of every
 * container of the pod cost a config decode each, on every create, start and exit.
 */
export function containerEventPublisher(bus: EventBus<ContainerEvent>, log: Logger, statuses: (rec: ContainerRecord) => { podSandboxStatus?: unknown; containersStatuses?: unknown[] }): ContainerEvents {
  return {
    publish(rec, type) {
      if (bus.subscriberCount === 0) return;
      try {
        bus.publish(containerEvent(rec.id, type, statuses(rec) as never));
      } catch (err) {
        log.warn("event publish failed", { container: rec.id, error: err });
      }
    },
  };
}

export const containerConfigOf = (rec: ContainerRecord): ContainerConfig => loadMessage(ContainerConfigSchema, rec.config, `container ${rec.id}`);
export const containerResourcesOf = (rec: ContainerRecord): LinuxContainerResources | undefined =>
  rec.resources ? loadMessage(LinuxContainerResourcesSchema, rec.resources, `container ${rec.id}`) : undefined;

/** The containers as the rest of berth reads them (stats, streaming, status RPCs). */
export class Containers {
  readonly store: Store<ContainerRecord>;
  readonly socketDir: string;
  readonly deps: ContainerDeps;
  constructor(deps: ContainerDeps) {
    this.deps = deps;
    this.store = deps.store;
    this.socketDir = deps.socketDir;
  }
  get(id: string): ContainerRecord { return this.store.get(id, "container_id"); }
  list(): ContainerRecord[] { return this.store.list().filter((c) => isVisible(c.state)); }
  runtimeOf(rec: { runtimeHandler: string }): OciRuntime { return this.deps.runtimes.get(rec.runtimeHandler); }
  /** Reads the exit file; marks the container exited when conmon recorded its exit. */
  refresh(id: string): Promise<ContainerRecord> { return refreshContainer(this.deps, id); }
}
