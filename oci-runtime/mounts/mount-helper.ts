// berth's own mounts through its C helper berth-mount (oci-runtime/mounts/helper/berth-mount.c):
// idmapped and recursive read-only bind clones, pinned pod user namespaces, and their removal.
// Everything berth mounts this way lives under one directory (<state>/userns), which the
// start-up sweep empties of whatever no live pod or create knows.
import { chmod, chown, lstat, mkdir, open, readdir, realpath, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { failedPrecondition, internal, invalidArgument } from "../foundation/errdefs.ts";
import { mountPointsUnder } from "../foundation/mountinfo.ts";
import { describeFailure, runCommand } from "../foundation/run-command.ts";

/** One mapping of a user namespace: ids [containerId, containerId+length) inside are [hostId, ...) outside. */
export interface IdMap {
  containerId: number;
  hostId: number;
  length: number;
}

export interface PodUserns {
  uids: IdMap;
  gids: IdMap;
}

/** A helper call may not take longer than this (it only makes system calls). */
export const MOUNT_HELPER_TIMEOUT_MS = 30_000;
const U32 = 2 ** 32;

/** The berth-mount helper beside berth-io (the directory of config runtime.io_helper). */
export const mountHelperPath = (ioHelper: string) => join(dirname(ioHelper), "berth-mount");

/** The root of berth's prepared mounts: pod user namespace pins and per-container mounts. */
export const usernsRoot = (stateDir: string) => join(stateDir, "userns");
export const podUsernsDir = (stateDir: string, podId: string) => join(usernsRoot(stateDir), "pods", podId);
export const containerMountsDir = (stateDir: string, containerId: string) => join(usernsRoot(stateDir), "containers", containerId);

async function run(helper: string, args: string[], what: string): Promise<string> {
  const r = await runCommand(helper, args, { timeoutMs: MOUNT_HELPER_TIMEOUT_MS });
  if (r.code !== 0) throw internal(`${what}: ${describeFailure(r)}`);
  return r.stdout;
}

/** Checks a mapping is one berth can pass on (integers, inside 32 bits, length > 0). */
export function checkIdMap(m: IdMap, field: string): void {
  for (const [k, v] of [["container_id", m.containerId], ["host_id", m.hostId], ["length", m.length]] as const) {
    if (!Number.isInteger(v) || v < 0 || v >= U32) throw invalidArgument(`${field}.${k} ${v} is not a 32-bit id`);
  }
  if (m.length === 0) throw invalidArgument(`${field}.length must not be 0`);
  if (m.containerId + m.length > U32 || m.hostId + m.length > U32) throw invalidArgument(`${field}: container_id/host_id + length ${m.length} passes 2^32`);
}

/** Makes the directories on the way to prepared mounts: traversable (0711) so the container's root can reach its mounts, never listable. */
async function mkdirTraversable(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o711 });
}

/** Where createPodUserns pins a pod's user namespace and the network namespace it owns ("" without one). */
export function podUsernsPins(stateDir: string, podId: string, withNetwork: boolean): { usernsPath: string; netnsPath: string } {
  const dir = podUsernsDir(stateDir, podId);
  return { usernsPath: join(dir, "user"), netnsPath: withNetwork ? join(dir, "net") : "" };
}

/**
 * Creates the pod's user namespace with exactly `u` (and a network namespace it owns, with lo
 * up, unless `withNetwork` is false), pinned as files in <state>/userns/pods/<podId>/{user,net}.
 * On failure nothing is left behind.
 */
export async function createPodUserns(helper: string, stateDir: string, podId: string, u: PodUserns, withNetwork: boolean): Promise<{ usernsPath: string; netnsPath: string }> {
  checkIdMap(u.uids, "uids[0]");
  checkIdMap(u.gids, "gids[0]");
  const dir = podUsernsDir(stateDir, podId);
  await mkdirTraversable(dirname(dir));
  await chmod(usernsRoot(stateDir), 0o711);
  await chmod(dirname(dir), 0o711);
  await mkdir(dir, { mode: 0o700 });
  // Only the pod's root (and host root) may enter: it reaches the infra rootfs clone through it.
  await chown(dir, u.uids.hostId, u.gids.hostId);
  const { usernsPath, netnsPath } = podUsernsPins(stateDir, podId, withNetwork);
  try {
    for (const p of [usernsPath, netnsPath].filter(Boolean)) await (await open(p, "wx", 0o444)).close();
    await run(helper, [
      "userns", usernsPath, netnsPath || "-",
      String(u.uids.containerId), String(u.uids.hostId), String(u.uids.length),
      String(u.gids.containerId), String(u.gids.hostId), String(u.gids.length),
    ], `cannot create the user namespace of pod ${podId}`);
    return { usernsPath, netnsPath };
  } catch (err) {
    await removeUnder(helper, dir).catch(() => {});
    throw err;
  }
}

/** Most sysctls, longest sysctl name and value one pin-ns call takes (berth-mount checks the same). */
export const PIN_MAX_SYSCTLS = 256;
export const PIN_SYSCTL_NAME_MAX = 255;
export const PIN_SYSCTL_VALUE_MAX = 4096;
/** Linux's HOST_NAME_MAX: the longest hostname or domain name sethostname takes. */
export const PIN_HOSTNAME_MAX = 64;

export interface PodNamespacePins {
  /** Where the pod's new IPC namespace is pinned ("" for none: host IPC). */
  ipcPath: string;
  /** Where the pod's new UTS namespace is pinned ("" for none: host UTS, as with host network). */
  utsPath: string;
  /** The pod's pinned user namespace, joined first so it owns the new namespaces. */
  usernsPath?: string;
  /** The pod's pinned network namespace, where the net.* sysctls are written. */
  netnsPath?: string;
  /** Set in the new UTS namespace ("" leaves the host's name). */
  hostname: string;
  /** Validated pod sysctls in dotted form: net.* in the netns, IPC ones in the new IPC namespace, kernel.hostname/domainname in the UTS one. */
  sysctls: Record<string, string>;
}

/** Checks what pin-ns takes: counts and sizes (INVALID_ARGUMENT naming the limit). */
export function checkPinInput(p: Pick<PodNamespacePins, "hostname" | "sysctls">, field = "config.linux.sysctls"): void {
  const entries = Object.entries(p.sysctls);
  if (entries.length > PIN_MAX_SYSCTLS) throw invalidArgument(`${field}: ${entries.length} sysctls, more than the limit of ${PIN_MAX_SYSCTLS}`);
  for (const [k, v] of entries) {
    if (Buffer.byteLength(k) > PIN_SYSCTL_NAME_MAX) throw invalidArgument(`${field}: sysctl name ${JSON.stringify(k.slice(0, 80))}… is longer than ${PIN_SYSCTL_NAME_MAX} bytes`);
    // "." separates components, "/" stands for a "." inside one: no component may be empty, "." or "..".
    if (k.split(".").some((c) => c === "" || /^\/{1,2}$/.test(c))) throw invalidArgument(`${field}: sysctl ${JSON.stringify(k)} names no sysctl file (empty, "." or ".." component)`);
    if (Buffer.byteLength(v) > PIN_SYSCTL_VALUE_MAX) throw invalidArgument(`${field}: the value of sysctl ${JSON.stringify(k)} is longer than ${PIN_SYSCTL_VALUE_MAX} bytes`);
    if ((k === "kernel.hostname" || k === "kernel.domainname") && Buffer.byteLength(v) > PIN_HOSTNAME_MAX) throw invalidArgument(`${field}: ${k} ${JSON.stringify(v.slice(0, 80))} is longer than ${PIN_HOSTNAME_MAX} bytes`);
    if (v.includes("\0")) throw invalidArgument(`${field}: the value of sysctl ${JSON.stringify(k)} contains NUL`);
  }
  if (Buffer.byteLength(p.hostname) > PIN_HOSTNAME_MAX) throw invalidArgument(`config.hostname ${JSON.stringify(p.hostname.slice(0, 80))} is longer than ${PIN_HOSTNAME_MAX} bytes (the kernel's HOST_NAME_MAX)`);
}

/**
 * Creates the pod's IPC and UTS namespaces without a process to hold them (berth-mount pin-ns):
 * sets the hostname and the pod's sysctls (net.* in the pod's netns) and pins them by bind mounts on
 * `ipcPath` and `utsPath` (created here, 0444 files). On failure nothing is left mounted or created.
 */
export async function pinPodNamespaces(helper: string, p: PodNamespacePins): Promise<void> {
  checkPinInput(p);
  const pins = [p.ipcPath, p.utsPath].filter(Boolean);
  if (!pins.length) return;
  const args = ["pin-ns", p.ipcPath || "-", p.utsPath || "-", p.usernsPath || "-", p.netnsPath || "-", (p.utsPath && p.hostname) || ""];
  for (const [k, v] of Object.entries(p.sysctls)) args.push(k, v);
  await runPinning(helper, args, pins, p.sysctls, "cannot create the pod's ipc/uts namespaces");
}

/** Creates the pin files (0444) and runs berth-mount; on failure unpins and removes them. */
async function runPinning(helper: string, args: string[], pins: string[], sysctls: Record<string, string>, what: string): Promise<void> {
  try {
    for (const path of pins) {
      await mkdir(dirname(path), { recursive: true, mode: 0o700 });
      await (await open(path, "wx", 0o444)).close();
    }
    await run(helper, args, what);
  } catch (err) {
    await unpinPodNamespaces(helper, pins).catch(() => {});
    throw sysctlRefusal(err, sysctls);
  }
}

/** A value the kernel refuses is the caller's input: say which (INVALID_ARGUMENT); other errors as they are. */
function sysctlRefusal(err: unknown, sysctls: Record<string, string>): unknown {
  const m = /set sysctl (\S+): (Invalid argument|Numerical result out of range)/.exec((err as Error).message);
  if (m && Object.hasOwn(sysctls, m[1]!)) {
    return invalidArgument(`config.linux.sysctls: the kernel refused ${m[1]} = ${JSON.stringify(sysctls[m[1]!]!.slice(0, 80))} (${m[2]})`, err);
  }
  return err;
}

/** The largest /dev/shm berth-mount mounts (10^15 bytes, far above any memory). */
export const POD_SHM_MAX = 1e15;

export interface PodNamespacesInput {
  /** An existing directory (real path) to mount the pod's /dev/shm tmpfs on ("" for none), of `shmBytes`. */
  shmDir: string;
  shmBytes: number;
  /** An existing empty file (real path) to pin a new network namespace on, with lo up ("" for none). */
  netnsPin: string;
  /** The pod's IPC and UTS namespaces as pinPodNamespaces makes them ("" for none; without a user namespace). */
  pins?: Omit<PodNamespacePins, "usernsPath" | "netnsPath">;
}

/**
 * A pod's /dev/shm, network namespace and IPC/UTS namespaces in one exec of berth-mount (`pod`):
 * net.* sysctls are written in the new network namespace. On failure nothing is left mounted and
 * the IPC/UTS pin files are removed (the shm directory and the netns pin file are the caller's).
 */
export async function createPodNamespaces(helper: string, p: PodNamespacesInput): Promise<void> {
  if (p.shmDir && (!Number.isInteger(p.shmBytes) || p.shmBytes <= 0 || p.shmBytes > POD_SHM_MAX)) throw invalidArgument(`invalid shm size ${p.shmBytes} (1 to ${POD_SHM_MAX} bytes)`);
  const sysctls = p.pins?.sysctls ?? {};
  if (p.pins) checkPinInput(p.pins);
  if (Object.keys(sysctls).some((k) => k.startsWith("net.")) && !p.netnsPin) throw invalidArgument("config.linux.sysctls: net.* sysctls need the pod's own network namespace");
  const pins = [p.pins?.ipcPath ?? "", p.pins?.utsPath ?? ""].filter(Boolean);
  const args = ["pod", p.shmDir || "-", p.shmDir ? String(p.shmBytes) : "-", p.netnsPin || "-",
    p.pins?.ipcPath || "-", p.pins?.utsPath || "-", (p.pins?.utsPath && p.pins.hostname) || ""];
  for (const [k, v] of Object.entries(sysctls)) args.push(k, v);
  await runPinning(helper, args, pins, sysctls, "cannot create the pod's namespaces");
}

/** /proc/net/dev of the network namespace pinned at `netnsPath` (no process needs to be in it). */
export async function readPinnedNetDev(helper: string, netnsPath: string): Promise<string> {
  return run(helper, ["netdev", netnsPath], `cannot read the network counters of ${netnsPath}`);
}

/** Unmounts (every stacked mount) and deletes each pin. Idempotent: a missing or unmounted pin is fine. */
export async function unpinPodNamespaces(helper: string, paths: string[]): Promise<void> {
  for (const path of paths.filter(Boolean)) {
    // A pin is a file: nothing is mounted below it, so any mount "under" it is on it.
    for (let i = 0; i < 8 && (await mountsUnder(path)).length; i++) await detach(helper, path);
    if ((await mountsUnder(path)).length) throw internal(`cannot unmount the namespace pin ${path}`);
    await rm(path, { force: true });
  }
}

/**
 * A recursive clone of the mount tree at `source` attached on a new file or directory `target`
 * (created here, of the same kind as the source): idmapped to the user namespace pinned at
 * `userns` when given, and read-only: "rro" every mount of it, "ro" its top only.
 */
export async function bindClone(helper: string, source: string, target: string, opts: { userns?: string; mode: "rro" | "ro" | "rw" }): Promise<void> {
  const st = await lstat(source).catch((err: NodeJS.ErrnoException) => {
    throw invalidArgument(`mount source ${source}: ${err.code ?? err.message}`, err);
  });
  if (st.isSymbolicLink()) throw invalidArgument(`mount source ${source} is a symbolic link`);
  await mkdirTraversable(dirname(target));
  if (st.isDirectory()) await mkdir(target, { mode: 0o711 });
  else await (await open(target, "wx", 0o444)).close();
  try {
    await run(helper, ["bind", source, target, opts.userns ?? "-", opts.mode],
      `cannot prepare ${opts.userns ? "an idmapped" : "a"}${opts.mode === "rro" ? " recursively read-only" : ""} mount of ${source}`);
  } catch (err) {
    await rm(target, { recursive: false, force: true }).catch(() => {});
    if (opts.userns && /idmapped clone of the source: Invalid argument/.test((err as Error).message)) {
      throw failedPrecondition(`${(err as Error).message} (the filesystem of ${source}, or of a mount under it, does not support idmapped mounts, which a pod with its own user namespace needs)`, err);
    }
    throw err;
  }
}

/** Lazily detaches one mount (its last component not followed). */
export async function detach(helper: string, path: string): Promise<void> {
  await run(helper, ["umount", path], `cannot unmount ${path}`);
}

/**
 * Mount points at or below `dir`, deepest first. mountinfo names real paths: `dir` is resolved
 * first (a state dir given as /var/run/berth with /var/run -> /run); one that does not exist has
 * nothing mounted under it, and is compared as given.
 */
export async function mountsUnder(dir: string): Promise<string[]> {
  const real = await realpath(dir).catch(() => dir);
  return (await mountPointsUnder(real)).sort((a, b) => b.length - a.length);
}

/** Detaches every mount at or below `dir`, then deletes `dir`. Idempotent. */
export async function removeUnder(helper: string, dir: string): Promise<void> {
  // A pin or clone can be stacked (mounted twice on one path): repeat, boundedly.
  for (let i = 0; i < 8; i++) {
    const mounts = await mountsUnder(dir);
    if (!mounts.length) break;
    for (const m of mounts) await detach(helper, m).catch(() => {});
  }
  const left = await mountsUnder(dir);
  if (left.length) throw internal(`cannot unmount ${left.length} mount(s) under ${dir}: ${left.slice(0, 3).join(", ")}`);
  await rm(dir, { recursive: true, force: true });
}

/** Ids (directory names) under <state>/userns/{pods,containers,volumes} (volumes/ holds containers' image volumes). */
export async function listPrepared(stateDir: string, kind: "pods" | "containers" | "volumes"): Promise<string[]> {
  try {
    return (await readdir(join(usernsRoot(stateDir), kind))).filter((n) => !n.startsWith("."));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
}

/**
 * Start-up sweep: removes the prepared mounts of every pod and container not in `keep`, and the
 * image volumes (with any idmapped layer clone left mounted) of every container not in `keep`
 * (a crash between preparing and recording or releasing them). Returns what it removed.
 */
export async function sweepPrepared(helper: string, stateDir: string, keep: { pods: Set<string>; containers: Set<string> }): Promise<string[]> {
  const removed: string[] = [];
  for (const kind of ["pods", "containers", "volumes"] as const) {
    for (const id of await listPrepared(stateDir, kind)) {
      if (keep[kind === "volumes" ? "containers" : kind].has(id)) continue;
      const dir = join(usernsRoot(stateDir), kind, id);
      await removeUnder(helper, dir);
      removed.push(dir);
    }
  }
  return removed;
}
