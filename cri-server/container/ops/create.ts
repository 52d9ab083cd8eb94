// CreateContainer: record, bundle, rootfs, image volumes, spec, berth's mounts, conmon and the
// runtime's container; the container is CREATED on success. Any failure tears down all of it
// (teardown.ts), under the container's lock so a Stop or Remove of the new id waits.
import { dirname, isAbsolute, join } from "node:path";
import { toJson } from "@bufbuild/protobuf";
import {
  ContainerConfigSchema, CreateContainerRequestSchema, LinuxContainerResourcesSchema, PodSandboxState,
  type ContainerConfig, type CreateContainerRequest, type PodSandboxConfig,
} from "../../../proto/gen/runtime/v1/api_pb.js";
import type { Image } from "../../../image-service/image-service.ts";
import { failedPrecondition, invalidArgument, notFound } from "../../../oci-runtime/foundation/errdefs.ts";
import { containerCgroupsPath } from "../../../oci-runtime/cgroups/paths.ts";
import { monitorBinary } from "../../../oci-runtime/monitor/conmon.ts";
import { idempotentCreate, requestFingerprint } from "../../create-cache.ts";
import { ContainerEventType } from "../../events/index.ts";
import { checkKeyValues, checkNoControl } from "../../network/pod-input.ts";
import { storeMessage } from "../../stores/proto-record.ts";
import type { SandboxRecord } from "../../sandbox/sandbox-record.ts";
import type { ContainerRecord } from "../container-record.ts";
import type { ResolvedDevice } from "../../../oci-runtime/cdi/cdi.ts";
import type { ContainerDeps, ContainerSecurity } from "../deps.ts";
import { addImageVolumeMounts } from "../image-volumes.ts";
import { containerLogPath } from "../log-path.ts";
import { criSignalName, normaliseSignal } from "../signals.ts";
import { isRunning, nextContainerState } from "../state.ts";
import { teardownContainer } from "./teardown.ts";

const ctrName = (meta: { name: string; attempt: number }, sandboxId: string) => `${meta.name}_${meta.attempt}_${sandboxId}`;

interface Checked { image: Image; pod: PodSandboxConfig; security: ContainerSecurity; devices: ResolvedDevice[] }

export async function createContainer(d: ContainerDeps, req: CreateContainerRequest): Promise<string> {
  // The monitor's cgroup join and runc create's move of the container follow in some ms: the
  // kernel's grace-period wait for them starts now, while the request is checked and the rootfs
  // and spec are made (a request refused below costs one cheap write).
  d.cgroups.warmAttach();
  if (!req.podSandboxId) throw invalidArgument("pod_sandbox_id must not be empty");
  const cfg = req.config;
  if (!cfg) throw invalidArgument("config must be set");
  if (!cfg.metadata?.name) throw invalidArgument("config.metadata.name must not be empty");
  checkNoControl("config.metadata.name", cfg.metadata.name);
  if (!cfg.image?.image) throw invalidArgument("config.image.image must not be empty");
  const sandbox = d.sandboxes.get(req.podSandboxId);
  if ((await d.sandboxes.liveState(sandbox)) !== PodSandboxState.SANDBOX_READY) throw failedPrecondition(`pod sandbox ${sandbox.id} is not ready`);
  const name = ctrName(cfg.metadata, sandbox.id);
  return idempotentCreate<Checked>(d.creates, {
    kind: "container", name, fingerprint: requestFingerprint(toJson(CreateContainerRequestSchema, req)),
    names: d.store, log: d.log, newId: d.os.newId,
    async check() {
      const image = d.images.get(cfg.image!.image);
      if (!image) throw notFound(`image ${JSON.stringify(cfg.image!.image)} not found`);
      const pod = d.sandboxes.podConfig(sandbox);
      for (const m of cfg.mounts) {
        if (!isAbsolute(m.containerPath)) throw invalidArgument(`mount container_path ${JSON.stringify(m.containerPath)} must be absolute`);
        if (!m.image && !isAbsolute(m.hostPath)) throw invalidArgument(`mount host_path ${JSON.stringify(m.hostPath)} must be absolute`);
      }
      // Bad security input (seccomp, user namespace, image volumes, CDI devices) fails before anything is created.
      const { security, devices } = await d.specs.check(cfg, pod, sandbox);
      return { image, pod, security, devices };
    },
    // Under the container's lock, so a Stop or Remove of the new id waits for the create to settle.
    run: (id, c) => d.store.withLock(id, () => create(d, id, name, cfg, sandbox, c)),
  });
}

async function create(d: ContainerDeps, id: string, name: string, cfg: ContainerConfig, sandbox: SandboxRecord, c: Checked): Promise<string> {
  const { image, pod, security, devices } = c;
  const rt = d.runtimes.get(sandbox.runtimeHandler);
  const bundle = join(d.config.state, "containers", id);
  const rootfs = join(bundle, "rootfs");
  const logPath = containerLogPath(pod.logDirectory, cfg.logPath); // refuses ".." and control characters, naming the field
  checkKeyValues("config.labels", cfg.labels);
  checkKeyValues("config.annotations", cfg.annotations);
  const cgroupParent = sandbox.cgroupParent;
  const cgroupsPath = containerCgroupsPath(cgroupParent, id); // oci-runtime's one cgroup-path builder (the spec's is the same)
  const stopSignal = cfg.stopSignal ? criSignalName(cfg.stopSignal) : normaliseSignal(image.config.StopSignal ?? "");
  const rec: ContainerRecord = {
    id, name, sandboxId: sandbox.id, state: "creating",
    metadata: { name: cfg.metadata!.name, attempt: cfg.metadata!.attempt },
    createdAt: d.os.now().toString(), startedAt: "0", finishedAt: "0", exitCode: 0, reason: "", message: "",
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
  // The record goes to disk first, so a crash mid-create is found and torn down at start.
  await d.store.add(rec);
  try {
    let targetPid: number | undefined;
    const targetId = cfg.linux?.securityContext?.namespaceOptions?.targetId;
    if (cfg.linux?.securityContext?.namespaceOptions?.pid === 3) {
      const target = d.store.tryGet(targetId ?? "");
      if (!target || target.sandboxId !== sandbox.id || !isRunning(target.state)) {
        throw notFound(`target container ${JSON.stringify(targetId)} for the pid namespace is not a running container of pod ${sandbox.id}`);
      }
      targetPid = target.pid;
    }
    // The rootfs mount and the spec build overlap: the build waits for the rootfs only to read an
    // image's /etc/passwd and /etc/group the first time (later creates of the image use the kept ones).
    const rootfsReady = (async () => {
      await d.os.mkdirPrivate(bundle);
      await d.os.mkdirPrivate(rootfs);
      await d.images.createRootfs(id, image.id, rootfs);
    })();
    const volumesReady = rootfsReady.then(() => d.mounts.mountImageVolumes(id, bundle, cfg, sandbox));
    // Image volumes change the mounts the spec is built from: then the build waits for them.
    const specCfg = cfg.mounts.some((m) => m.image?.image) ? volumesReady.then((v) => v.cfg) : Promise.resolve(cfg);
    const built = specCfg.then((c) => d.specs.build({
      id, cfg: c, pod, sandbox, image, rootfs, security, devices, cgroupsPath, runtime: rt, rootfsReady, ...(targetPid ? { targetPid } : {}),
    }));
    const [volumes, { spec, user }] = await allSettled(volumesReady, built);
    rec.user = { uid: user.uid, gid: user.gid, additionalGids: user.additionalGids, ...(user.username ? { username: user.username } : {}) };
    // Mounts the runtime cannot make itself (idmapped for a user-namespaced pod, rro without "rro").
    const upper = d.images.upperDir(id);
    const prepared = await d.mounts.prepare({
      containerId: id, spec,
      rroByBerth: d.mountFeatures.get(rt.name)?.recursiveReadOnly === "berth",
      ...(sandbox.userns ? {
        userns: { path: sandbox.userns.path, hostUid: sandbox.userns.uids.hostId, hostGid: sandbox.userns.gids.hostId },
        rootfs: {
          snapshotRoot: dirname(dirname(dirname(upper))), upper, work: join(dirname(upper), "work"), mountedAt: rootfs,
          lowers: image.chainIds.length ? [...image.chainIds].reverse().map((ch) => `${ch.replace(/^sha256:/, "")}/fs`) : ["empty/fs"],
        },
      } : {}),
    });
    addImageVolumeMounts(spec, volumes.mounts); // after berth's idmapped clones: an image volume is its own
    const [{ synced }] = await allSettled(d.os.stageBundle(bundle, spec), logPath ? d.os.mkdirShared(dirname(logPath)) : Promise.resolve()); // kubelet's log tree, not berth's
    // config.json becomes durable while the runtime creates the container; it is, before the record says created.
    const [started, durable] = await Promise.allSettled([d.monitor.create({
      runtime: rt,
      id, name: cfg.metadata!.name, bundle,
      logPath: logPath || join(bundle, "container.log"),
      exitDir: d.exitDir, socketDir: d.socketDir, persistDir: bundle,
      stdin: cfg.stdin, stdinOnce: cfg.stdinOnce, terminal: cfg.tty,
      conmonBinary: monitorBinary(d.config.runtime),
      cgroup: { layout: await d.cgroups.layout(), path: d.cgroups.conmonPath(cgroupParent, id) },
    }), synced]);
    // Known to the teardown even when only the sync failed: the monitor runs.
    if (started.status === "fulfilled") { rec.pid = started.value.pid; rec.conmonPid = started.value.conmonPid; }
    if (started.status === "rejected") throw started.reason;
    if (durable.status === "rejected") throw durable.reason;
    // The container's mount namespace holds its own copies of the bind mounts now (the rootfs stays: runc exec starts there).
    if (prepared) await d.mounts.releaseBindClones(prepared);
    const next = await d.store.update(id, (r) => {
      r.state = nextContainerState(r.state, "created")!;
      r.pid = rec.pid; r.conmonPid = rec.conmonPid; r.user = rec.user;
    });
    d.events.publish(next, ContainerEventType.CONTAINER_CREATED_EVENT);
    return id;
  } catch (err) {
    // The one teardown, best effort: every step runs (each idempotent) and failures are logged.
    await teardownContainer(d, rec, "best-effort");
    throw err;
  }
}

/**
 * Waits for every step (so a failure's teardown never races one still running) and answers their
 * values, or throws the first failure in argument order.
 */
async function allSettled<A, B>(a: Promise<A>, b: Promise<B>): Promise<[A, B]> {
  const [ra, rb] = await Promise.allSettled([a, b]);
  if (ra.status === "rejected") throw ra.reason;
  if (rb.status === "rejected") throw rb.reason;
  return [ra.value, rb.value];
}
