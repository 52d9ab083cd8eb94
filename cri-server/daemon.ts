// berthd: builds the context, takes the socket lock, serves, and shuts down cleanly.
import { mkdirSync, realpathSync, unlinkSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { ImageService as ImageServiceDesc, RuntimeService as RuntimeServiceDesc } from "../proto/gen/runtime/v1/api_pb.js";
import type { Config } from "./config.ts";
import type { Context } from "./context.ts";
import { imageImplementations, runtimeImplementations } from "./handlers.ts";
import { acquireLock } from "./lock.ts";
import { probeHandlers } from "../oci-runtime/mounts/features.ts";
import { mountHelperPath, sweepPrepared } from "../oci-runtime/mounts/mount-helper.ts";
import { ensureDirSync, fixDirModes, modeFor, traversePath, TRAVERSE_DIR_MODE } from "../oci-runtime/foundation/dir-modes.ts";
import { log as rootLog, setLogLevel } from "../oci-runtime/foundation/log.ts";
import { findExecutable } from "../oci-runtime/foundation/executable.ts";
import { loadMallocTrim } from "../oci-runtime/foundation/malloc-trim.ts";
import { useSpawner } from "../oci-runtime/foundation/run-command.ts";
import { cgroupAttachWarmer } from "../oci-runtime/cgroups/attach-warm.ts";
import { Spawner } from "../oci-runtime/foundation/spawner.ts";
import { monitorBinary } from "../oci-runtime/monitor/conmon.ts";
import { listen, type CriServer } from "./server.ts";
import { NetworkManager } from "./network/cni.ts";
import { loadPodCidr } from "./network/pod-cidr.ts";
import { podContainers } from "./container/ops/remove.ts";
import { recoverContainers } from "./container/ops/recover.ts";
import { onExitFile } from "./container/ops/exit.ts";
import { recoverSandboxes } from "./sandbox/ops/recover.ts";
import { realSandboxOs, Sandboxes, type SandboxDeps } from "./sandbox/deps.ts";
import type { SandboxRecord } from "./sandbox/sandbox-record.ts";
import type { ContainerRecord } from "./container/container-record.ts";
import { Store } from "./stores/store.ts";
import { exposedGc, IdleGc } from "./idle-gc.ts";
import { CreateCache } from "./create-cache.ts";
import { RuncInfraRuntime } from "./sandbox/infra-runtime.ts";
import { instrumentImagePulls, instrumentNetwork, instrumentRuntime, startMetrics } from "./metrics/index.ts";
import { shutdownTracing, startTracing } from "./tracing.ts";
import { ImageService } from "../image-service/image-service.ts";
import { RuntimeHandlers, RuncCli } from "../oci-runtime/index.ts";
import { SealedRuntimeBinary } from "../oci-runtime/runtime/sealed-binary.ts";
import { containerEventPublisher, Containers, ExitFiles, realContainerDeps } from "./container/deps.ts";
import { EventBus, type ContainerEvent } from "./events/index.ts";
import { eventStatuses } from "./runtime/event-statuses.ts";
import { LazyStreaming } from "./lazy-streaming.ts";

export const BERTH_VERSION = "0.1.0";

export interface Daemon {
  readonly ctx: Context;
  readonly server: CriServer;
  stop(): Promise<void>;
}

export async function startDaemon(config: Config, configPath: string): Promise<Daemon> {
  setLogLevel(config.log.level);
  const log = rootLog.child({ component: "berthd" });
  // root is berth's alone (0700); state and the way to the socket are search-only (0711), see dir-modes.ts.
  const modes = { root: config.root, state: config.state, socket: config.grpc.address };
  // (fixDirModes below sets root's and state's modes, and logs when an older version left them open)
  for (const dir of [config.root, config.state]) mkdirSync(dir, { recursive: true, mode: modeFor(modes, dir) });
  for (const dir of traversePath(modes)) if (dir !== config.root && dir !== config.state) ensureDirSync(dir, TRAVERSE_DIR_MODE);
  // Real paths from here on: mounts are found by path in mountinfo, which names no symlinks (state = /var/run/berth, /var/run -> /run).
  config = { ...config, root: realpathSync(config.root), state: realpathSync(config.state) };
  mkdirSync(dirname(config.grpc.address), { recursive: true, mode: 0o711 }); // a socket dir of its own: created, never chmodded
  const releaseLock = acquireLock(`${config.grpc.address}.lock`);
  const modeFixes = fixDirModes(modes, log);
  if (modeFixes.length) log.warn("fixed modes left by an older berth", { count: modeFixes.length });
  try {
    try { unlinkSync(config.grpc.address); log.info("removed stale socket", { path: config.grpc.address }); } catch { /* none */ }
    await startTracing({ endpoint: config.tracing.endpoint, serviceName: config.tracing.service_name, log });
    // prom-client and the endpoint are loaded only with [metrics] address set; otherwise a no-op sink.
    const metricsServer = await startMetrics({ address: config.metrics.address, log });
    const metrics = metricsServer.metrics;
    const network = new NetworkManager({
      confDir: config.cni.conf_dir,
      binDirs: config.cni.bin_dirs,
      stateDir: config.state,
      // On persistent storage: IPAM leases (host-local) outlive reboots, so DEL must find its input after one.
      cacheDir: join(config.root, "cni-cache"),
      pluginTimeoutMs: config.cni.plugin_timeout * 1000,
      log: log.child({ component: "cni" }),
    });
    instrumentNetwork(network, metrics);
    const podCidr = loadPodCidr(config.root);
    if (podCidr.problem) log.warn("stored pod cidr not used", { problem: podCidr.problem });
    network.podCidr = podCidr.cidr;
    // berth-spawn beside io_helper (hack/build-helpers.sh), when installed, starts every helper
    // run (runc, mount, CNI plugins...) and the monitors: berthd itself does not fork for them.
    const spawnHelper = findExecutable(join(dirname(config.runtime.io_helper), "berth-spawn"));
    if (spawnHelper) useSpawner(new Spawner(spawnHelper));
    else log.warn("berth-spawn not installed: helpers are forked from berthd", { looked: join(dirname(config.runtime.io_helper), "berth-spawn") });
    // berthd moves itself into its own cgroup ahead of the runtime's cgroup moves (attach-warm.ts);
    // a cgroup it may not write to turns that off, said once.
    cgroupAttachWarmer((err) => log.info("cgroup attach warm-up off: berthd cannot write its own cgroup.procs", { error: err.message }));
    const startHelper = findExecutable(join(dirname(config.runtime.io_helper), "berth-start"));
    const runtimes = RuntimeHandlers.fromConfig(
      // conmon needs absolute paths; a binary missing now still gets a clear error when used.
      Object.fromEntries(Object.entries(config.runtime.handlers).map(([n, h]) => [n, {
        binary: findExecutable(h.binary) ?? h.binary, root: h.root, timeoutMs: config.runtime.runtime_timeout * 1000,
        // berth-start beside io_helper (hack/build-helpers.sh), when installed: runc containers start without runc start.
        ...(startHelper ? { startHelper } : {}),
      }])),
      config.runtime.default_handler,
    );
    // One start-up probe of the mount features each handler offers (Status, RunPodSandbox and CreateContainer use it).
    const mountHelper = mountHelperPath(config.runtime.io_helper);
    // runc handlers run from a sealed copy of runc that berthd holds (oci-runtime/runtime/sealed-binary.ts):
    // runc then skips copying itself on every create and exec. Only runc: other runtimes may pick
    // their mode by the name they are run as (crun as krun runs pods in a microVM) or find files
    // beside their own executable, and a memfd has neither.
    const sealing = Promise.all(runtimes.all().filter((rt): rt is RuncCli => rt instanceof RuncCli && basename(rt.binary) === "runc").map(async (rt) => {
      const copy = new SealedRuntimeBinary(mountHelper, rt.binary, (message) => log.warn("runtime runs from its binary on disk", { handler: rt.name, message }));
      rt.useSealedCopy(copy);
      if (await copy.start()) log.info("runtime runs from a sealed copy", { handler: rt.name, binary: rt.binary, path: copy.path });
      return copy;
    }));
    const [mountFeatures, sealedCopies] = await Promise.all([
      probeHandlers({ helper: mountHelper, stateDir: config.state, rootDir: config.root, handlers: runtimes.all() }),
      sealing,
    ]);
    for (const [handler, f] of mountFeatures) {
      const fields = { handler, recursiveReadOnlyMounts: f.recursiveReadOnly, userNamespaces: f.userNamespaces };
      if (f.reasons.length) log.warn("mount features unavailable", { ...fields, reasons: f.reasons });
      else log.info("mount features", fields);
    }
    const images = new ImageService({
      root: config.root,
      hostsDir: config.registry.config_path,
      ...(config.registry.auth_file ? { authFile: config.registry.auth_file } : {}),
      maxConcurrentDownloads: config.registry.max_concurrent_downloads,
      stallTimeoutMs: config.registry.stall_timeout * 1000,
      layerHelper: join(dirname(config.runtime.io_helper), "berth-layer"),
      layerLimits: { maxLayerBytes: config.image.max_layer_bytes, maxLayerEntries: config.image.max_layer_entries },
      // In a process of their own, which ends when idle: what a pull loads does not stay in berthd.
      pullIn: "process",
      trust: {
        policy: config.image.signature_policy, policyDir: config.image.signature_policy_dir, registriesD: config.image.registries_d,
        onOutcome: (o) => metrics.observeImageTrust(o.result, o.reason ?? ""),
      },
      log,
    });
    await images.init();
    instrumentImagePulls(images, metrics, (ref) => images.get(ref)?.size);
    for (const name of runtimes.names()) instrumentRuntime(runtimes.get(name), metrics);
    const events = new EventBus<ContainerEvent>({ queueSize: 4096 });
    // Built in dependency order: sandbox lookups, container operations (which look pods up),
    // then the sandbox operations (which stop and remove a pod's containers).
    const infra = new RuncInfraRuntime(config, log, runtimes);
    const sandboxStore = new Store<SandboxRecord>("sandbox", join(config.root, "sandboxes"));
    const sandboxes = new Sandboxes({ store: sandboxStore, infra });
    const containerStore = new Store<ContainerRecord>("container", join(config.root, "containers"));
    const exits = new ExitFiles(join(config.state, "exits"));
    const containerDeps = realContainerDeps({
      config, log, store: containerStore, images, runtimes, sandboxes, exits, mountFeatures,
      events: containerEventPublisher(events, log, (rec) => eventStatuses(sandboxes, containerStore, rec)),
    });
    const containers = new Containers(containerDeps);
    const sandboxDeps: SandboxDeps = {
      config, log: log.child({ component: "sandbox" }), store: sandboxStore,
      creates: new CreateCache(config.runtime.create_cache_ttl * 1000),
      os: realSandboxOs(config), network, infra, containers: podContainers(containerDeps), mountFeatures,
    };
    await recoverSandboxes(sandboxDeps);
    await recoverContainers(containerDeps);
    // Prepared mounts of no known pod or container are from a crash.
    for (const dir of await sweepPrepared(mountHelper, config.state, { pods: new Set(sandboxes.store.list().map((r) => r.id)), containers: new Set(containers.store.list().map((r) => r.id)) })) {
      log.warn("removed mounts a crash left behind", { dir });
    }
    // Runtime containers no record knows (a create killed before its record was written).
    const known = new Set([...sandboxes.store.list().map((r) => r.id), ...containers.store.list().map((r) => r.id)]);
    for (const name of runtimes.names()) {
      const rt = runtimes.get(name);
      const states = await rt.list().catch(() => []);
      for (const st of states) {
        if (known.has(st.id)) continue;
        log.warn("deleting an orphaned runtime container", { handler: name, id: st.id });
        await rt.delete(st.id, { force: true }).catch((err) => log.error("orphan delete failed", { id: st.id, error: err }));
      }
    }
    // Exits are noticed (and evented) from conmon's exit files, without polling per container.
    exits.start((id, info) => onExitFile(containerDeps, id, info));
    metrics.setContainerStates(() => {
      const counts: Record<string, number> = { created: 0, running: 0, exited: 0 };
      for (const c of containers.list()) counts[c.state] = (counts[c.state] ?? 0) + 1;
      return counts;
    });
    // Loaded and started on the first Exec/Attach/PortForward (the server and ws cost memory idle);
    // it reads `ctx` (declared below, which holds it) only then.
    const streaming = new LazyStreaming({
      context: () => ctx,
      address: config.stream.address,
      port: config.stream.port,
      ...(config.stream.tls_cert ? { tlsCertFile: config.stream.tls_cert, tlsKeyFile: config.stream.tls_key } : {}),
      tokenTtlMs: config.stream.token_ttl * 1000,
      idleTimeoutMs: config.stream.idle_timeout * 1000,
      spdyLimits: { maxHeaderBytes: config.stream.max_header_bytes },
      log,
    });
    await streaming.check();
    const ctx: Context = {
      config,
      configPath,
      log,
      version: BERTH_VERSION,
      network,
      sandboxes,
      sandboxDeps,
      containers,
      images,
      events,
      streaming,
      async runtimeReady() {
        const handler = config.runtime.handlers[config.runtime.default_handler];
        if (!handler || !findExecutable(handler.binary)) {
          return { ready: false, reason: "RuntimeBinaryMissing", message: `OCI runtime ${JSON.stringify(handler?.binary)} for handler ${config.runtime.default_handler} not found` };
        }
        if (!findExecutable(monitorBinary(config.runtime))) {
          return { ready: false, reason: "ConmonMissing", message: `monitor ${JSON.stringify(monitorBinary(config.runtime))} (runtime.monitor = ${JSON.stringify(config.runtime.monitor)}) not found` };
        }
        return { ready: true };
      },
      networkReady: () => network.status(),
      // Every handler by name, and the default one also as "" (the name kubelet and critest use for it, as containerd lists it).
      handlerFeatures: () => [config.runtime.default_handler, ...Object.keys(config.runtime.handlers)].map((handler, i) => ({
        name: i === 0 ? "" : handler,
        features: {
          recursiveReadOnlyMounts: (mountFeatures.get(handler)?.recursiveReadOnly ?? "none") !== "none",
          userNamespaces: mountFeatures.get(handler)?.userNamespaces ?? false,
        },
      })),
    };
    // Memory back to the system once removals stop (idle-gc.ts; node's --expose-gc, bin/berthd).
    // berth-trim.node beside io_helper (hack/build-helpers.sh): malloc_trim(0) after each collection
    const trim = loadMallocTrim(join(dirname(config.runtime.io_helper), "berth-trim.node"));
    if (typeof trim !== "function") log.debug("no malloc_trim after the memory-reducing gc", { why: trim.unavailable });
    const idleGc = new IdleGc({
      gc: exposedGc(), ...(typeof trim === "function" ? { trim } : {}),
      onCollect: (ms, after, trimmed) => log.debug("memory-reducing gc", { after, ms: Math.round(ms), ...(trimmed === undefined ? {} : { trimmed }) }),
    });
    if (!idleGc.enabled) log.debug("no memory-reducing gc after start-up and removals: node runs without --expose-gc");
    const server = await listen(config.grpc.address, [
      { service: RuntimeServiceDesc, impls: runtimeImplementations as never },
      { service: ImageServiceDesc, impls: imageImplementations as never },
    ], ctx, (method, code, seconds) => { metrics.observeRpc(method, code, seconds); idleGc.observe(method, code); });
    log.info("berthd serving", { socket: config.grpc.address, root: config.root, state: config.state, version: BERTH_VERSION, pid: process.pid });
    idleGc.started();
    let stopping: Promise<void> | undefined;
    return {
      ctx,
      server,
      stop: () => (stopping ??= (async () => {
        log.info("berthd stopping");
        events.close(); // ends GetContainerEvents streams, which would hold tryShutdown for its whole grace
        idleGc.close();
        await server.shutdown();
        await streaming.stop();
        exits.close();
        await metricsServer.stop();
        await Promise.all(sealedCopies.map((c) => c.close()));
        await images.close(); // pulls still unpacking past the server's grace are stopped; nothing writes into a layer after this
        await shutdownTracing();
        try { unlinkSync(config.grpc.address); } catch { /* gone */ }
        releaseLock();
        log.info("berthd stopped");
      })()),
    };
  } catch (err) {
    releaseLock();
    throw err;
  }
}
