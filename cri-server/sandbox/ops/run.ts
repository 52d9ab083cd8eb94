// RunPodSandbox: the record, the pod directory with /dev/shm, the user and network namespaces (and,
// without a user namespace, the ipc/uts pins: one berth-mount exec) and CNI's cache entry side by
// side; CNI's plugins once the netns exists; the infra process (or the pins not made yet) once the
// record is on disk, alongside CNI; then the pod's files beside CNI's cached result, then the ready
// record. Any failure tears down all of it (teardown.ts).
// A pod that does not share a PID namespace (pid mode CONTAINER, as kubelet sends for ordinary
// pods, or NODE) gets no infra process with runtime.drop_infra: its IPC and UTS namespaces are
// created by berth-mount and pinned as files in the pod directory (no runc call at all).
import { join } from "node:path";
import { toJson } from "@bufbuild/protobuf";
import { NamespaceMode, PodSandboxConfigSchema, RunPodSandboxRequestSchema, type PodSandboxConfig, type RunPodSandboxRequest } from "../../../proto/gen/runtime/v1/api_pb.js";
import { idempotentCreate, requestFingerprint } from "../../create-cache.ts";
import { invalidArgument } from "../../../oci-runtime/foundation/errdefs.ts";
import { checkPinInput, podUsernsPins } from "../../../oci-runtime/mounts/mount-helper.ts";
import { netnsDir } from "../../network/netns.ts";
import { podBandwidth } from "../../network/bandwidth.ts";
import type { SetUpResult } from "../../network/cni.ts";
import { validateSysctls } from "../../network/sysctl.ts";
import { storeMessage } from "../../stores/proto-record.ts";
import type { SandboxRecord } from "../sandbox-record.ts";
import { podDirOf, podPinPaths, type SandboxDeps } from "../deps.ts";
import { HOSTNAME_MAX, podUsernsOf, sandboxName, validatePodConfig } from "../pod-config.ts";
import { nextSandboxState } from "../state.ts";
import { teardownSandbox } from "./teardown.ts";

/** The configured handler for a runtime_handler ("" is the default one). */
function handlerOf(d: SandboxDeps, name: string): string {
  const handler = name || d.config.runtime.default_handler;
  if (!d.config.runtime.handlers[handler]) {
    throw invalidArgument(`runtime handler ${JSON.stringify(name)} is not configured (known: ${Object.keys(d.config.runtime.handlers).join(", ")})`);
  }
  return handler;
}

/** RunPodSandbox. A retry of a create still in progress (or finished after the caller gave up) gets the same id. */
export async function runSandbox(d: SandboxDeps, req: RunPodSandboxRequest, signal?: AbortSignal): Promise<string> {
  const cfg = req.config;
  if (!cfg) throw invalidArgument("config must be set");
  const m = cfg.metadata;
  if (!m) throw invalidArgument("config.metadata must be set");
  if (!m.name) throw invalidArgument("config.metadata.name must not be empty");
  if (!m.namespace) throw invalidArgument("config.metadata.namespace must not be empty");
  if (!m.uid) throw invalidArgument("config.metadata.uid must not be empty");
  const handler = handlerOf(d, req.runtimeHandler);
  validatePodConfig(cfg);
  const userns = podUsernsOf(cfg);
  if (userns && !d.mountFeatures.get(handler)?.userNamespaces) {
    const why = d.mountFeatures.get(handler)?.reasons.filter((r) => r.startsWith("user namespaces")).join("; ") || "not probed";
    throw invalidArgument(`config.linux.security_context.namespace_options.userns_options: runtime handler ${JSON.stringify(handler)} does not support user namespaces here (${why})`);
  }
  d.infra.preflight?.(handler);
  const name = sandboxName(m);
  return idempotentCreate(d.creates, {
    kind: "pod sandbox", name, fingerprint: requestFingerprint(toJson(RunPodSandboxRequestSchema, req)),
    names: d.store, log: d.log, newId: d.os.newId,
    check: () => undefined,
    run: (id) => create(d, id, name, handler, cfg, signal),
  });
}

async function create(d: SandboxDeps, id: string, name: string, handler: string, cfg: PodSandboxConfig, signal?: AbortSignal): Promise<string> {
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
  // Sizes the kernel (and berth-mount's argv) take, for both kinds of pod (runc would fail later on them).
  checkPinInput({ hostname: hostNetwork ? "" : hostname, sysctls });
  const podDir = podDirOf(d.config, id);
  const userns = podUsernsOf(cfg);
  const dropInfra = d.config.runtime.drop_infra && namespaces.pid !== NamespaceMode.POD;
  const [ipcPin, utsPin] = podPinPaths(podDir);
  const rec: SandboxRecord = {
    id, name, state: "creating",
    metadata: { name: m.name, uid: m.uid, namespace: m.namespace, attempt: m.attempt },
    createdAt: d.os.now().toString(),
    labels: { ...cfg.labels },
    annotations: { ...cfg.annotations },
    runtimeHandler: handler,
    config: storeMessage(PodSandboxConfigSchema, cfg),
    namespaces,
    netnsPath: "",
    ips: [],
    podDir,
    shmPath: hostIpc ? "" : `${podDir}/shm`,
    cgroupParent: linux?.cgroupParent ?? "",
    infra: { pid: 0, bundle: dropInfra ? "" : `${podDir}/bundle`, cgroupsPath: "" },
    ...(dropInfra ? { pins: { ipc: hostIpc ? "" : ipcPin, uts: hostNetwork ? "" : utsPin } } : {}),
  };
  // The netns pin's path is known before it is made: the record names it from the start, so no
  // second record write is needed once it exists (the teardown of a half-made pod is idempotent).
  if (!hostNetwork && !userns) rec.netnsPath = join(netnsDir(d.config.state), id.slice(0, 32));
  if (userns) {
    const pins = podUsernsPins(d.config.state, id, !hostNetwork);
    rec.userns = { path: pins.usernsPath, ...userns };
    rec.netnsPath = pins.netnsPath;
  }
  const bandwidth = podBandwidth(cfg.annotations);
  const dns = cfg.dnsConfig ? { servers: cfg.dnsConfig.servers, searches: cfg.dnsConfig.searches, options: cfg.dnsConfig.options } : undefined;
  type Settled<T> = PromiseSettledResult<T>;
  const settle = <T>(p: Promise<T>): Promise<Settled<T>> => p.then((value) => ({ status: "fulfilled", value }), (reason: unknown) => ({ status: "rejected", reason }));
  let network: Promise<Settled<SetUpResult | undefined>> = Promise.resolve({ status: "fulfilled", value: undefined });
  // A pod without infra: its ipc/uts pins are made before or while CNI runs, unless it sets net.*
  // sysctls, which then wait for CNI (a per-interface one, net.ipv4.conf.eth0.*, needs the interface).
  const pinAfterNetwork = !!rec.pins && Object.keys(sysctls).some((k) => k.startsWith("net."));
  try {
    // The record, the pod directory, /dev/shm and the namespaces do not depend on each other: side
    // by side. Until the record is on disk only things the start-up sweep finds by the pod's id
    // exist (netns pin, user namespace pins, pod directory with its shm and pins), so a crash in
    // between leaves nothing behind; the infra process (a runc container) starts only after it is on disk.
    // Everything settles before a failure is thrown, so the teardown sees all that was made.
    // Without a user namespace, one helper call makes /dev/shm, the netns and (unless net.* sysctls
    // must wait for CNI's interfaces) the ipc/uts pins: each process spawned costs the event loop.
    const together = !userns && !!d.os.createPodNamespaces;
    const pinsEarly = together && !!rec.pins && !pinAfterNetwork;
    const first = Promise.allSettled([
      d.store.add(rec),
      together ? Promise.resolve() : (async () => {
        await d.os.mkdirPrivate(podDir);
        if (rec.shmPath) await d.os.mountShm(rec.shmPath, d.config.runtime.shm_size);
      })(),
      (async () => {
        if (together) {
          await d.os.mkdirPrivate(podDir);
          const made = await d.os.createPodNamespaces!({
            shmPath: rec.shmPath, shmSize: d.config.runtime.shm_size, netnsName: hostNetwork ? "" : id.slice(0, 32),
            ...(pinsEarly ? { pins: { ipcPath: rec.pins!.ipc, utsPath: rec.pins!.uts, hostname, sysctls } } : {}),
          });
          return hostNetwork ? undefined : { netnsPath: made.netnsPath };
        }
        if (userns) {
          // The network namespace is created inside the pod's user namespace, which owns it (so its
          // sysctls and sysfs are the pod's); both are pinned under <state>/userns/pods/<id>.
          const pins = await d.os.createUserns(id, userns, !hostNetwork);
          return { usernsPath: pins.usernsPath, netnsPath: pins.netnsPath };
        } else if (!hostNetwork) {
          return { netnsPath: await d.os.createNetns(id.slice(0, 32)) };
        }
        return undefined;
      })(),
    ]);
    if (!hostNetwork) {
      // CNI writes its cache entry meanwhile and runs its plugins once the netns exists, without
      // waiting for the record: a crash after its ADD is undone at start-up from its own cache
      // entry (on disk before the ADD), and the netns is swept by the pod's id.
      const ready = first.then(([, , n]) => {
        if (n.status === "rejected") throw n.reason;
        return n.value ? n.value.netnsPath : rec.netnsPath;
      });
      ready.catch(() => {}); // setUp may fail before it waits for it; the reasons are thrown below
      network = settle(d.network.setUp({
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
        ready,
        // The cached result is written while the pod files are (both before the ready record).
        deferResultSave: true,
      }));
    }
    const [recResult, shmResult, nsResult] = await first;
    // The helpers may name the pins by another path (a state directory reached through a symlink):
    // the teardown is told at once, the record once it is on disk.
    const made = nsResult.status === "fulfilled" ? nsResult.value : undefined;
    const moved = !!made && (made.netnsPath !== rec.netnsPath || (!!made.usernsPath && made.usernsPath !== rec.userns?.path));
    if (made && moved) {
      rec.netnsPath = made.netnsPath;
      if (made.usernsPath && rec.userns) rec.userns = { ...rec.userns, path: made.usernsPath };
    }
    if (recResult.status === "rejected") throw recResult.reason;
    if (moved) await d.store.update(id, (r) => { r.netnsPath = rec.netnsPath; if (rec.userns) r.userns = rec.userns; });
    if (shmResult.status === "rejected") throw shmResult.reason;
    if (nsResult.status === "rejected") throw nsResult.reason;
    // The infra process (or the ipc/uts pins) needs only the netns, not its addresses: start it while CNI runs.
    const pin = () => d.os.pinNamespaces({
      ipcPath: rec.pins!.ipc, utsPath: rec.pins!.uts, hostname, sysctls,
      ...(rec.netnsPath ? { netnsPath: rec.netnsPath } : {}),
      ...(rec.userns ? { usernsPath: rec.userns.path } : {}),
    });
    const [netResult, infraResult] = await Promise.all([
      network,
      settle(rec.pins
        ? (pinAfterNetwork || pinsEarly ? Promise.resolve(undefined) : pin().then(() => undefined))
        : d.infra.start({
          signal,
          id, handler, bundle: rec.infra.bundle, hostname, netnsPath: rec.netnsPath, namespaces, sysctls,
          cgroupParent: rec.cgroupParent, podDir, shmPath: rec.shmPath, config: cfg,
          ...(rec.userns ? { userns: rec.userns } : {}),
        })),
    ]);
    if (netResult.status === "rejected") throw netResult.reason;
    if (infraResult.status === "rejected") throw infraResult.reason;
    if (pinAfterNetwork) await pin();
    const infra = infraResult.value;
    rec.ips = netResult.value?.ips ?? [];
    if (infra) {
      rec.infra.pid = infra.pid;
      rec.infra.cgroupsPath = infra.cgroupsPath;
      if (infra.startTime) rec.infra.startTime = infra.startTime;
      if (infra.bootId) rec.infra.bootId = infra.bootId;
    }
    const [filesResult, savedResult] = await Promise.allSettled([
      d.os.writePodFiles({ dir: podDir, hostname: hostname || d.os.hostname(), ips: rec.ips, ...(dns ? { dns } : {}), hostNetwork }),
      netResult.value?.saved,
    ]);
    if (savedResult.status === "rejected") throw savedResult.reason;
    if (filesResult.status === "rejected") throw filesResult.reason;
    await d.store.update(id, (r) => {
      r.state = nextSandboxState(r.state, "ready")!;
      r.ips = rec.ips;
      r.infra = rec.infra;
    });
    d.log.info("sandbox ready", { sandbox: id, name, ips: rec.ips, ...(infra ? { pid: infra.pid } : { infra: "none" }) });
    return id;
  } catch (err) {
    // CNI may still be running (a failure before it was awaited): it ends first.
    await network;
    // The one teardown, best effort: every step runs (each idempotent) and failures are logged.
    await teardownSandbox(d, rec, "best-effort");
    throw err;
  }
}
