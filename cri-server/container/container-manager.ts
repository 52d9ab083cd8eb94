// Containers: create, start, stop, remove, exit tracking, and recovery after a restart.
// A create registers an undo for every resource (rootfs mount, bundle, conmon, runtime
// state), so a failure leaves nothing behind. conmon holds each container's stdio,
// writes its log and exit file, and outlives berthd.
import { randomBytes } from "node:crypto";
import { mkdir, readFile, rm, stat } from "node:fs/promises";
import { dirname, isAbsolute, join, posix } from "node:path";
import { fromJson, toJson, type JsonValue } from "@bufbuild/protobuf";
import {
  ContainerConfigSchema, CreateContainerRequestSchema, LinuxContainerResourcesSchema, PodSandboxState,
  type ContainerConfig, type CreateContainerRequest, type LinuxContainerResources,
} from "../../proto/gen/runtime/v1/api_pb.js";
import {
  createContainer as conmonCreate, detectCgroupLayout, execSync, ociResources, readExitFile, recover as conmonRecover,
  reopenLog, removeCgroup, wasOomKilled, watchExits, writeBundle, conmonFiles, isConmonAlive, readPidFile,
  type ExecSyncResult, type ExitInfo, type ExitWatcher, type OciRuntime, type RuntimeHandlers,
} from "../../oci-runtime/index.ts";
import type { Image, ImageService } from "../../image-service/image-service.ts";
import type { Config } from "../config.ts";
import { CreateCache } from "../create-cache.ts";
import { alreadyExists, deadlineExceeded, failedPrecondition, invalidArgument, notFound, unimplemented } from "../../oci-runtime/foundation/errdefs.ts";
import { ContainerEventType, containerEvent, type EventBus, type ContainerEvent } from "../events/index.ts";
import type { Logger } from "../../oci-runtime/foundation/log.ts";
import { nowNs } from "../../oci-runtime/foundation/clock.ts";
import { Cleanup } from "../../oci-runtime/foundation/cleanup.ts";
import { requestFingerprint, type SandboxManager } from "../sandbox/sandbox-manager.ts";
import type { SandboxRecord } from "../sandbox/sandbox-record.ts";
import { Store } from "../stores/store.ts";
import { loadMessage, storeMessage } from "../stores/proto-record.ts";
import { conmonCgroupIsPerContainer, conmonCgroupPath } from "../../oci-runtime/monitor/conmon-cgroup.ts";
import { containerLogPath } from "./log-path.ts";
import { checkKeyValues } from "../network/pod-input.ts";
import { checkContainerUserns, containerSpecInput, criResources, resolveContainerSecurity, resolveContainerUser } from "./spec-input.ts";
import { buildContainerSpec } from "../../oci-runtime/bundle-spec/container-spec.ts";
import { containerCgroupsPath } from "../../oci-runtime/cgroups/paths.ts";
import type { ContainerRecord } from "./container-record.ts";
import type { MountFeatures } from "../../oci-runtime/mounts/features.ts";
import { containerMountsDir, mountHelperPath } from "../../oci-runtime/mounts/mount-helper.ts";
import { prepareContainerMounts, releaseBindClones, releaseContainerMounts } from "../../oci-runtime/mounts/prepare.ts";
import { addImageVolumeMounts, checkImageMounts, imageVolumeDirs, mountImageVolumes, usernsImageVolumeDir } from "./image-volumes.ts";
import { applyDevices, requestedDevices, resolveDevices } from "../../oci-runtime/cdi/cdi.ts";

const SIGNALS: Record<number, string> = { 1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 9: "SIGKILL", 10: "SIGUSR1", 12: "SIGUSR2", 15: "SIGTERM", 19: "SIGSTOP", 28: "SIGWINCH" };

/** CRI's Signal enum (RUNTIME_DEFAULT=0, SIGABRT=1, ...) names; index = enum value. */
const CRI_SIGNALS = ["", "SIGABRT", "SIGALRM", "SIGBUS", "SIGCHLD", "SIGCLD", "SIGCONT", "SIGFPE", "SIGHUP", "SIGILL", "SIGINT", "SIGIO", "SIGIOT", "SIGKILL", "SIGPIPE", "SIGPOLL", "SIGPROF", "SIGPWR", "SIGQUIT", "SIGSEGV", "SIGSTKFLT", "SIGSTOP", "SIGSYS", "SIGTERM", "SIGTRAP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGUSR1", "SIGUSR2", "SIGVTALRM", "SIGWINCH", "SIGXCPU", "SIGXFSZ", "SIGRTMIN"];

export function normaliseSignal(s: string): string {
  if (!s) return "SIGTERM";
  if (/^\d+$/.test(s)) return SIGNALS[Number(s)] ?? s;
  const up = s.toUpperCase();
  return up.startsWith("SIG") ? up : `SIG${up}`;
}

export const criSignalName = (v: number): string => CRI_SIGNALS[v] ?? "";
export const criSignalValue = (name: string): number => Math.max(0, CRI_SIGNALS.indexOf(normaliseSignal(name)));

const ctrName = (meta: { name: string; attempt: number }, sandboxId: string) => `${meta.name}_${meta.attempt}_${sandboxId}`;

export interface ContainerManagerOptions {
  config: Config;
  log: Logger;
  runtimes: RuntimeHandlers;
  images: ImageService;
  sandboxes: SandboxManager;
  events: EventBus<ContainerEvent>;
  /** Builds the statuses attached to events (set by the daemon). */
  eventStatuses?: (rec: ContainerRecord) => { podSandboxStatus?: unknown; containersStatuses?: unknown[] };
}

export class ContainerManager {
  readonly store: Store<ContainerRecord>;
  readonly exitDir: string;
  readonly socketDir: string;
  private readonly config: Config;
  private readonly log: Logger;
  private readonly runtimes: RuntimeHandlers;
  private readonly images: ImageService;
  private readonly sandboxes: SandboxManager;
  private readonly events: EventBus<ContainerEvent>;
  private readonly creates: CreateCache;
  private watcher: ExitWatcher | undefined;
  private cgroupV2: boolean | undefined;
  private rroSupport = new Map<string, Promise<boolean>>();
  /** Mount features per handler from the daemon's start-up probe (set by the daemon). */
  mountFeatures = new Map<string, MountFeatures>();
  eventStatuses: NonNullable<ContainerManagerOptions["eventStatuses"]>;

  constructor(o: ContainerManagerOptions) {
    this.config = o.config;
    this.log = o.log.child({ component: "container" });
    this.runtimes = o.runtimes;
    this.images = o.images;
    this.sandboxes = o.sandboxes;
    this.events = o.events;
    this.store = new Store<ContainerRecord>("container", join(o.config.root, "containers"));
    this.exitDir = join(o.config.state, "exits");
    this.socketDir = join(o.config.state, "sockets");
    this.creates = new CreateCache(o.config.runtime.create_cache_ttl * 1000);
    this.eventStatuses = o.eventStatuses ?? (() => ({}));
  }

  get(id: string): ContainerRecord {
    return this.store.get(id, "container_id");
  }

  list(): ContainerRecord[] {
    return this.store.list().filter((c) => c.state !== "creating");
  }

  runtimeOf(rec: { runtimeHandler: string }): OciRuntime {
    return this.runtimes.get(rec.runtimeHandler);
  }

  configOf(rec: ContainerRecord): ContainerConfig {
    return loadMessage(ContainerConfigSchema, rec.config, `container ${rec.id}`);
  }

  resourcesOf(rec: ContainerRecord): LinuxContainerResources | undefined {
    return rec.resources ? loadMessage(LinuxContainerResourcesSchema, rec.resources, `container ${rec.id}`) : undefined;
  }

  private publish(rec: ContainerRecord, type: ContainerEventType): void {
    try {
      this.events.publish(containerEvent(rec.id, type, this.eventStatuses(rec) as never));
    } catch (err) {
      this.log.warn("event publish failed", { container: rec.id, error: err });
    }
  }

  private async isCgroupV2(): Promise<boolean> {
    if (this.cgroupV2 === undefined) this.cgroupV2 = (await detectCgroupLayout()).mode === "v2";
    return this.cgroupV2;
  }

  private supportsRro(rt: OciRuntime): Promise<boolean> {
    let p = this.rroSupport.get(rt.name);
    if (!p) {
      p = rt.features().then((f) => f.mountOptions.includes("rro")).catch(() => false);
      this.rroSupport.set(rt.name, p);
    }
    return p;
  }

  // ---- create ------------------------------------------------------------------------

  async create(req: CreateContainerRequest): Promise<string> {
    if (!req.podSandboxId) throw invalidArgument("pod_sandbox_id must not be empty");
    const cfg = req.config;
    if (!cfg) throw invalidArgument("config must be set");
    if (!cfg.metadata?.name) throw invalidArgument("config.metadata.name must not be empty");
    if (!cfg.image?.image) throw invalidArgument("config.image.image must not be empty");
    const sandbox = this.sandboxes.get(req.podSandboxId);
    if ((await this.sandboxes.liveState(sandbox)) !== PodSandboxState.SANDBOX_READY) throw failedPrecondition(`pod sandbox ${sandbox.id} is not ready`);
    const name = ctrName(cfg.metadata, sandbox.id);
    const fingerprint = requestFingerprint(toJson(CreateContainerRequestSchema, req));
    const pending = this.creates.get(name);
    if (pending && pending.fingerprint === fingerprint) {
      this.log.info("retry joins an earlier create", { name });
      return pending.result;
    }
    const existing = this.store.idOfName(name);
    if (existing) throw alreadyExists(`container name ${JSON.stringify(name)} is already reserved by container ${existing}`);
    const image = this.images.get(cfg.image.image);
    if (!image) throw notFound(`image ${JSON.stringify(cfg.image.image)} not found`);
    const pod = this.sandboxes.podConfig(sandbox);
    // Bad security input fails before anything is created.
    const security = await resolveContainerSecurity(cfg, pod, this.config.runtime.seccomp_default);
    checkContainerUserns(cfg, sandbox);
    for (const m of cfg.mounts) {
      if (!isAbsolute(m.containerPath)) throw invalidArgument(`mount container_path ${JSON.stringify(m.containerPath)} must be absolute`);
      if (!m.image && !isAbsolute(m.hostPath)) throw invalidArgument(`mount host_path ${JSON.stringify(m.hostPath)} must be absolute`);
    }
    checkImageMounts(this.images, cfg);
    await resolveDevices(this.config.cdi.spec_dirs, requestedDevices(cfg.CDIDevices, cfg.annotations));
    const id = randomBytes(32).toString("hex");
    this.store.reserveName(name, id);
    // Under the container's lock, so a Stop or Remove of the new id waits for the create to settle.
    const result = this.store.withLock(id, () => this.doCreate(id, name, cfg, sandbox, pod, image, security)).catch((err) => {
      this.store.releaseName(name, id);
      throw err;
    });
    this.creates.track(name, fingerprint, result);
    return result;
  }

  private async doCreate(
    id: string, name: string, cfg: ContainerConfig, sandbox: SandboxRecord,
    pod: ReturnType<SandboxManager["podConfig"]>, image: Image, security: Awaited<ReturnType<typeof resolveContainerSecurity>>,
  ): Promise<string> {
    const rt = this.runtimeOf(sandbox);
    const bundle = join(this.config.state, "containers", id);
    const rootfs = join(bundle, "rootfs");
    const logPath = containerLogPath(pod.logDirectory, cfg.logPath); // refuses ".." and control characters, naming the field
    checkKeyValues("config.labels", cfg.labels);
    checkKeyValues("config.annotations", cfg.annotations);
    const cgroupParent = sandbox.cgroupParent;
    const cgroupsPath = containerCgroupsPath(cgroupParent, id); // the one cgroup-path builder; the spec's is the same
    const stopSignal = cfg.stopSignal ? criSignalName(cfg.stopSignal) : normaliseSignal(image.config.StopSignal ?? "");
    const cleanup = new Cleanup(this.log.child({ container: id }));
    const rec: ContainerRecord = {
      id, name, sandboxId: sandbox.id, state: "creating",
      metadata: { name: cfg.metadata!.name, attempt: cfg.metadata!.attempt },
      createdAt: nowNs().toString(), startedAt: "0", finishedAt: "0", exitCode: 0, reason: "", message: "",
      image: {
        image: cfg.image!.image, annotations: { ...cfg.image!.annotations },
        userSpecifiedImage: cfg.image!.userSpecifiedImage || cfg.image!.image, runtimeHandler: cfg.image!.runtimeHandler,
      },
      imageId: image.id,
      imageRef: image.repoDigests[0] ?? image.id,
      labels: { ...cfg.labels },
      annotations: { ...cfg.annotations },
      logPath,
      config: storeMessage(ContainerConfigSchema, cfg),
      runtimeHandler: sandbox.runtimeHandler,
      bundle, rootfs, pid: 0, conmonPid: 0, cgroupsPath,
      resources: cfg.linux?.resources ? storeMessage(LinuxContainerResourcesSchema, cfg.linux.resources) : null,
      user: { uid: 0, gid: 0, additionalGids: [] },
      stopSignal,
    };
    try {
      await this.store.add(rec);
      cleanup.add("container record", () => this.store.delete(id));
      await mkdir(bundle, { recursive: true, mode: 0o700 });
      cleanup.add("bundle", () => rm(bundle, { recursive: true, force: true }));
      await mkdir(rootfs, { recursive: true, mode: 0o700 });
      await this.images.createRootfs(id, image.id, rootfs);
      cleanup.add("rootfs", () => this.images.removeRootfs(id, rootfs));
      const volumes = await mountImageVolumes(this.images, id, bundle, cfg, cleanup, {
        stateDir: this.config.state,
        ...(sandbox.userns ? { userns: { helper: mountHelperPath(this.config.runtime.io_helper), path: sandbox.userns.path } } : {}),
      });
      const user = await resolveContainerUser(cfg, image, rootfs);
      rec.user = { uid: user.uid, gid: user.gid, additionalGids: user.additionalGids, ...(user.username ? { username: user.username } : {}) };
      let targetPid: number | undefined;
      const targetId = cfg.linux?.securityContext?.namespaceOptions?.targetId;
      if (cfg.linux?.securityContext?.namespaceOptions?.pid === 3) {
        const target = this.store.tryGet(targetId ?? "");
        if (!target || target.sandboxId !== sandbox.id || target.state !== "running") {
          throw notFound(`target container ${JSON.stringify(targetId)} for the pid namespace is not a running container of pod ${sandbox.id}`);
        }
        targetPid = target.pid;
      }
      const spec = await buildContainerSpec(containerSpecInput({
        id, cfg: volumes.cfg, pod, sandbox, image, rootfs, security, user,
        cgroupV2: await this.isCgroupV2(), shmSize: this.config.runtime.shm_size,
        ...(targetPid ? { targetPid } : {}),
        supportsRecursiveReadOnly: this.mountFeatures.has(rt.name) ? this.mountFeatures.get(rt.name)!.recursiveReadOnly !== "none" : await this.supportsRro(rt),
      }));
      await applyDevices(spec, await resolveDevices(this.config.cdi.spec_dirs, requestedDevices(cfg.CDIDevices, cfg.annotations)));
      // Mounts the runtime cannot make itself (idmapped for a user-namespaced pod, rro without "rro").
      const mountHelper = mountHelperPath(this.config.runtime.io_helper);
      const upper = this.images.upperDir(id);
      const prepared = await prepareContainerMounts({
        helper: mountHelper, stateDir: this.config.state, containerId: id, spec,
        rroByBerth: this.mountFeatures.get(rt.name)?.recursiveReadOnly === "berth",
        ...(sandbox.userns ? {
          userns: { path: sandbox.userns.path, hostUid: sandbox.userns.uids.hostId, hostGid: sandbox.userns.gids.hostId },
          rootfs: {
            snapshotRoot: dirname(dirname(dirname(upper))), upper, work: join(dirname(upper), "work"), mountedAt: rootfs,
            lowers: image.chainIds.length ? [...image.chainIds].reverse().map((c) => `${c.replace(/^sha256:/, "")}/fs`) : ["empty/fs"],
          },
        } : {}),
      });
      if (prepared) cleanup.add("prepared mounts", () => releaseContainerMounts(mountHelper, prepared));
      addImageVolumeMounts(spec, volumes.mounts); // after berth's idmapped clones: an image volume is its own
      await writeBundle(bundle, spec);
      if (logPath) await mkdir(dirname(logPath), { recursive: true, mode: 0o755 }); // kubelet's log tree, not berth's
      // Registered before conmon runs: conmon can fail after `runtime create` succeeded.
      cleanup.add("runtime state", async () => {
        await rt.delete(id, { force: true }).catch(() => {});
        const conmonPid = await readPidFile(conmonFiles(bundle).conmonPidFile);
        if (conmonPid && (await isConmonAlive(conmonPid))) try { process.kill(conmonPid, "SIGKILL"); } catch { /* gone */ }
        await rm(join(this.exitDir, id), { force: true });
        await removeCgroup(await detectCgroupLayout(), cgroupsPath).catch(() => {});
        await this.removeConmonCgroup(id, cgroupsPath);
      });
      const started = await conmonCreate({
        runtime: rt,
        id, name: cfg.metadata!.name, bundle,
        logPath: logPath || join(bundle, "container.log"),
        exitDir: this.exitDir, socketDir: this.socketDir, persistDir: bundle,
        stdin: cfg.stdin, stdinOnce: cfg.stdinOnce, terminal: cfg.tty,
        conmonBinary: this.config.runtime.conmon,
        cgroup: { layout: await detectCgroupLayout(), path: conmonCgroupPath(this.config.runtime.conmon_cgroup, cgroupParent, id) },
      });
      rec.pid = started.pid;
      rec.conmonPid = started.conmonPid;
      // The container's mount namespace holds its own copies of the bind mounts now (the rootfs stays: runc exec starts there).
      if (prepared) await releaseBindClones(mountHelper, prepared);
      await this.store.update(id, (r) => {
        r.state = "created"; r.pid = rec.pid; r.conmonPid = rec.conmonPid; r.user = rec.user;
      });
      cleanup.commit();
      this.publish(this.store.get(id), ContainerEventType.CONTAINER_CREATED_EVENT);
      return id;
    } catch (err) {
      await cleanup.unwind();
      throw err;
    }
  }

  // ---- start / stop -------------------------------------------------------------------

  async start(id: string): Promise<void> {
    const rec = this.get(id);
    await this.store.withLock(rec.id, async () => {
      const cur = this.get(rec.id);
      if (cur.state !== "created") throw failedPrecondition(`container ${cur.id} is ${cur.state === "running" ? "already running" : `in state ${cur.state}`}; only a created container can be started`);
      const sandbox = this.sandboxes.store.tryGet(cur.sandboxId);
      if (!sandbox || (await this.sandboxes.liveState(sandbox)) !== PodSandboxState.SANDBOX_READY) {
        throw failedPrecondition(`pod sandbox ${cur.sandboxId} of container ${cur.id} is not ready`);
      }
      // The process may run (and exit, as conmon records) before runc start returns.
      const startedAt = nowNs().toString();
      try {
        await this.runtimeOf(cur).start(cur.id);
      } catch (err) {
        await this.store.update(cur.id, (r) => {
          r.state = "exited"; r.exitCode = 128; r.reason = "StartError"; r.message = (err as Error).message; r.finishedAt = nowNs().toString();
        });
        throw err;
      }
      await this.store.update(cur.id, (r) => { r.state = "running"; r.startedAt = startedAt; });
    });
    this.publish(this.get(rec.id), ContainerEventType.CONTAINER_STARTED_EVENT);
    // A process that exits at once may have done so before we recorded "running".
    await this.refresh(rec.id);
  }

  /** Reads the exit file; marks the container exited when conmon recorded its exit. */
  async refresh(id: string): Promise<ContainerRecord> {
    const rec = this.get(id);
    if (rec.state !== "running" && rec.state !== "created") return rec;
    const exit = await readExitFile(this.exitDir, rec.id);
    if (!exit) return rec;
    return this.markExited(rec.id, exit);
  }

  private async markExited(id: string, exit: ExitInfo): Promise<ContainerRecord> {
    const cur = this.store.tryGet(id);
    if (!cur || cur.state === "exited" || cur.state === "creating") return cur ?? this.get(id);
    const oom = await wasOomKilled(cur.bundle);
    let changed = false;
    const next = await this.store.update(id, (r) => {
      // Decided on the current record: two reporters of one exit (watcher, status refresh) change it once.
      if (r.state === "exited" || r.state === "creating") return;
      changed = true;
      r.state = "exited";
      r.exitCode = exit.exitCode;
      // created <= started <= finished even when clocks of berthd and conmon disagree slightly.
      const finished = exit.finishedAtNs > BigInt(r.startedAt) ? exit.finishedAtNs : BigInt(r.startedAt);
      r.finishedAt = (finished > BigInt(r.createdAt) ? finished : BigInt(r.createdAt)).toString();
      if (r.startedAt === "0") r.startedAt = r.finishedAt;
      r.reason = oom ? "OOMKilled" : exit.exitCode === 0 ? "Completed" : "Error";
    });
    if (!changed) return next;
    this.log.info("container exited", { container: id, exit_code: exit.exitCode, reason: next.reason });
    this.publish(next, ContainerEventType.CONTAINER_STOPPED_EVENT);
    return next;
  }

  /** StopContainer: the stop signal, then SIGKILL after `timeoutSec` (0 kills at once). Unknown ids succeed (CRI). */
  async stop(id: string, timeoutSec: number): Promise<void> {
    const found = this.store.resolve(id);
    if (!found) return;
    await this.store.withLock(found.id, async () => {
      // A concurrent remove may have deleted it while we waited for the lock: done, as for an unknown id.
      if (!this.store.tryGet(found.id)) return;
      const rec = await this.refresh(found.id);
      if (rec.state === "exited" || rec.state === "creating") return;
      const rt = this.runtimeOf(rec);
      const waitExit = async (ms: number) => {
        const end = Date.now() + ms;
        for (;;) {
          const exit = await readExitFile(this.exitDir, rec.id);
          if (exit) return exit;
          if (Date.now() >= end) return undefined;
          await new Promise((r) => setTimeout(r, Math.min(50, Math.max(5, end - Date.now()))));
        }
      };
      let exit: ExitInfo | undefined;
      if (timeoutSec > 0 && rec.state === "running") {
        await rt.kill(rec.id, rec.stopSignal || "SIGTERM").catch((err) => this.log.debug("stop signal failed", { container: rec.id, error: err }));
        exit = await waitExit(timeoutSec * 1000);
      }
      if (!exit) {
        await rt.kill(rec.id, "SIGKILL", true).catch((err) => this.log.debug("kill failed", { container: rec.id, error: err }));
        exit = await waitExit(10_000);
      }
      if (!exit) {
        // conmon is gone or the runtime lost the container: record what we know.
        const state = await rt.state(rec.id).catch(() => undefined);
        if (state && state.status !== "stopped") throw deadlineExceeded(`container ${rec.id} did not stop after SIGKILL`);
        exit = { exitCode: 137, finishedAt: new Date(), finishedAtNs: nowNs() } as ExitInfo;
      }
      await this.markExited(rec.id, exit);
    });
  }

  /** RemoveContainer: stops (kills) a running container first; unknown ids succeed (CRI). */
  async remove(id: string): Promise<void> {
    const found = this.store.resolve(id);
    if (!found) return;
    await this.stop(found.id, 0);
    await this.store.withLock(found.id, async () => {
      const rec = this.store.tryGet(found.id);
      if (!rec) return;
      await this.destroy(rec);
      this.creates.forget(rec.name);
      this.publish(rec, ContainerEventType.CONTAINER_DELETED_EVENT);
    });
  }

  /** Deletes runtime state, conmon, rootfs, bundle, cgroup and the record. */
  private async destroy(rec: ContainerRecord): Promise<void> {
    const rt = this.runtimeOf(rec);
    await rt.delete(rec.id, { force: true }).catch((err) => this.log.warn("runtime delete failed", { container: rec.id, error: err }));
    // A create interrupted by a crash has no conmon pid in its record yet: take conmon's pid file.
    const conmonPid = rec.conmonPid || (await readPidFile(conmonFiles(rec.bundle).conmonPidFile).catch(() => undefined));
    if (conmonPid && (await isConmonAlive(conmonPid))) {
      try { process.kill(conmonPid, "SIGKILL"); } catch { /* gone */ }
      // Wait for it, or it could still write its exit file after we removed it.
      for (let i = 0; i < 100 && (await isConmonAlive(conmonPid)); i++) await new Promise((r) => setTimeout(r, 10));
    }
    // berth's own mounts (a user-namespaced container's idmapped rootfs) go before the layers they use.
    await releaseContainerMounts(mountHelperPath(this.config.runtime.io_helper), containerMountsDir(this.config.state, rec.id));
    await this.images.removeRootfs(rec.id, rec.rootfs);
    await this.images.removeImageVolumes(rec.id, imageVolumeDirs(this.config.state, rec.bundle, rec.id));
    await rm(usernsImageVolumeDir(this.config.state, rec.id), { recursive: true, force: true });
    await rm(rec.bundle, { recursive: true, force: true });
    await rm(join(this.exitDir, rec.id), { force: true });
    await rm(join(this.socketDir, rec.id), { recursive: true, force: true });
    await removeCgroup(await detectCgroupLayout(), rec.cgroupsPath).catch(() => {});
    await this.removeConmonCgroup(rec.id, rec.cgroupsPath);
    await this.store.delete(rec.id);
    this.watcher?.forget(rec.id);
  }

  /** Removes the per-container conmon cgroup (conmon_cgroup = "pod"): `<dirname of the container cgroup>/berth-conmon-<id>`. */
  private async removeConmonCgroup(id: string, cgroupsPath: string): Promise<void> {
    if (!conmonCgroupIsPerContainer(this.config.runtime.conmon_cgroup) || !cgroupsPath) return;
    const path = conmonCgroupPath("pod", posix.dirname(cgroupsPath), id);
    const left = await removeCgroup(await detectCgroupLayout(), path).catch(() => [path]);
    if (left.length) this.log.warn("conmon cgroup left behind", { container: id, dirs: left });
  }

  // ---- pods -------------------------------------------------------------------------------

  async stopAll(sandboxId: string): Promise<void> {
    await Promise.all(this.store.list().filter((c) => c.sandboxId === sandboxId).map((c) => this.stop(c.id, 0)));
  }

  async removeAll(sandboxId: string): Promise<void> {
    await Promise.all(this.store.list().filter((c) => c.sandboxId === sandboxId).map((c) => this.remove(c.id)));
  }

  // ---- exec, logs, resources ---------------------------------------------------------

  async execSync(id: string, cmd: string[], timeoutSec: number): Promise<ExecSyncResult> {
    const rec = await this.refresh(this.get(id).id);
    if (rec.state !== "running") throw failedPrecondition(`container ${rec.id} is not running (state ${rec.state})`);
    if (!cmd.length) throw invalidArgument("cmd must not be empty");
    return execSync(this.runtimeOf(rec), rec.id, cmd, {
      bundle: rec.bundle,
      workDir: join(rec.bundle, "exec"),
      reaper: join(dirname(this.config.runtime.io_helper), "berth-exec"),
      drainTimeoutMs: this.config.runtime.exec_drain_timeout * 1000,
      ...(timeoutSec > 0 ? { timeoutMs: timeoutSec * 1000 } : {}),
    });
  }

  async reopenLog(id: string): Promise<void> {
    const rec = await this.refresh(this.get(id).id);
    if (rec.state !== "running") throw failedPrecondition(`container ${rec.id} is not running; cannot reopen its log`);
    // conmon reopens asynchronously by creating "<log>.tmp" and renaming it over the log path;
    // kubelet may compress the rotated file as soon as we answer, so wait for the new inode.
    const logPath = rec.logPath || join(rec.bundle, "container.log");
    const inode = async () => (await stat(logPath).catch(() => undefined))?.ino;
    const before = await inode();
    await reopenLog(rec.bundle, rec.id);
    const end = Date.now() + 10_000;
    for (;;) {
      const now = await inode();
      if (now !== undefined && now !== before) return;
      if (Date.now() >= end) throw deadlineExceeded(`conmon did not reopen log ${logPath} of container ${rec.id} within 10 s`);
      if (!(await isConmonAlive(rec.conmonPid))) throw failedPrecondition(`container ${rec.id} has no running monitor; cannot reopen its log`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  async updateResources(id: string, res: LinuxContainerResources | undefined): Promise<void> {
    const rec = await this.refresh(this.get(id).id);
    if (!res) return;
    if (rec.state === "exited") throw failedPrecondition(`container ${rec.id} has exited; cannot update its resources`);
    await this.store.withLock(rec.id, async () => {
      const oci = ociResources(criResources(res), { cgroupV2: await this.isCgroupV2() });
      await this.runtimeOf(rec).update(rec.id, oci);
      await this.store.update(rec.id, (r) => { r.resources = storeMessage(LinuxContainerResourcesSchema, res); });
      // Keep the bundle's spec in step, so a status or recovery sees the new limits.
      try {
        const specPath = join(rec.bundle, "config.json");
        const spec = JSON.parse(await readFile(specPath, "utf8"));
        spec.linux = { ...spec.linux, resources: { ...spec.linux?.resources, ...oci } };
        await writeBundle(rec.bundle, spec);
      } catch (err) {
        this.log.warn("cannot record updated resources in the bundle", { container: rec.id, error: err });
      }
    });
  }

  // ---- recovery ---------------------------------------------------------------------------

  /** Watches conmon's exit files so exits are noticed (and evented) without polling per container. */
  startWatching(): void {
    this.watcher ??= watchExits(this.exitDir, (id, info) => {
      if (!this.store.tryGet(id)) return;
      void this.store.withLock(id, async () => { if (this.store.tryGet(id)) await this.markExited(id, info); }).catch((err) => this.log.warn("exit handling failed", { container: id, error: err }));
    });
  }

  stopWatching(): void {
    this.watcher?.close();
    this.watcher = undefined;
  }

  /** A crash between `runc start` and recording it leaves a running container recorded as created. */
  private async recoverStart(rec: ContainerRecord): Promise<void> {
    const state = await this.runtimeOf(rec).state(rec.id).catch(() => undefined);
    if (state?.status !== "running") return;
    this.log.warn("container was started while berthd went down; recording it as running", { container: rec.id });
    const next = await this.store.update(rec.id, (x) => { x.state = "running"; x.startedAt = nowNs().toString(); });
    this.publish(next, ContainerEventType.CONTAINER_STARTED_EVENT);
  }

  /**
   * After a restart: half-created containers are cleaned up; running ones keep running
   * and are reported with their pid; those that exited while berthd was down get their
   * exit code and time from conmon's exit file.
   */
  async recover(): Promise<void> {
    const recs = await this.store.load((file, err) => this.log.error("unreadable container record", { file, error: err }));
    for (const rec of recs) {
      this.store.reserveName(rec.name, rec.id);
      try {
        if (rec.state === "creating") {
          this.log.warn("cleaning up a container whose create was interrupted", { container: rec.id });
          await this.destroy(rec);
          continue;
        }
        if (rec.state === "exited") continue;
        const r = await conmonRecover({ id: rec.id, bundle: rec.bundle, exitDir: this.exitDir, persistDir: rec.bundle });
        if (r.status === "exited") {
          await this.markExited(rec.id, r);
        } else if (r.status === "running") {
          if (r.pid !== rec.pid || r.conmonPid !== rec.conmonPid) await this.store.update(rec.id, (x) => { x.pid = r.pid; x.conmonPid = r.conmonPid; });
          if (rec.state === "created") await this.recoverStart(rec);
        } else if (r.status === "lost") {
          // conmon died without an exit file: nothing would log or reap this container any more.
          this.log.warn("container lost its monitor while berthd was down; killing it", { container: rec.id });
          await this.runtimeOf(rec).kill(rec.id, "SIGKILL", true).catch(() => {});
          await this.markExited(rec.id, { exitCode: 137, finishedAt: new Date(), finishedAtNs: nowNs() } as ExitInfo);
          await this.store.update(rec.id, (x) => { x.reason = "Error"; x.message = "container monitor (conmon) exited while berthd was down"; });
        } else {
          const state = await this.runtimeOf(rec).state(rec.id).catch(() => undefined);
          if (!state || state.status === "stopped") {
            await this.markExited(rec.id, { exitCode: 255, finishedAt: new Date(), finishedAtNs: nowNs() } as ExitInfo);
            await this.store.update(rec.id, (x) => { x.reason = "Unknown"; x.message = "container monitor lost while berthd was down"; });
          }
        }
      } catch (err) {
        this.log.error("recovery of a container failed", { container: rec.id, error: err });
        // Never leave a hidden "creating" record holding its name: report it exited, so kubelet
        // removes it (which retries the cleanup).
        if (this.store.tryGet(rec.id)?.state === "creating") {
          await this.store.update(rec.id, (x) => {
            x.state = "exited"; x.exitCode = 255; x.reason = "Unknown";
            x.message = `create interrupted and cleanup failed: ${(err as Error).message}`;
            x.finishedAt = nowNs().toString();
          }).catch(() => {});
        }
      }
    }
  }
}
