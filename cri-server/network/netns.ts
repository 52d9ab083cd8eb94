// Network namespaces pinned as files under <stateDir>/netns/<name>, the way
// `ip netns add` pins them under /run/netns: the directory is made a mount
// point with its own shared peer group (so an unmount also reaches copies of
// the pin in mount namespaces created later), the file is a bind mount of
// the namespace's nsfs inode. Creating one is a single exec of berth-mount
// (`netns`: unshare, lo up by ioctl, bind mount), or without it `unshare`
// running `ip link set lo up` inside.

import { mkdir, open, readdir, realpath, rm, statfs } from "node:fs/promises";
import { join } from "node:path";
import { alreadyExists, internal, invalidArgument } from "../../oci-runtime/foundation/errdefs.ts";
import { findMount } from "../../oci-runtime/foundation/mountinfo.ts";
import { describeFailure, MOUNT_TIMEOUT_MS, runCommand } from "../../oci-runtime/foundation/run-command.ts";

/** statfs f_type of nsfs (linux/magic.h NSFS_MAGIC). */
const NSFS_MAGIC = 0x6e736673;

export interface NetnsOptions {
  /** The daemon's runtime state directory; namespaces live in <stateDir>/netns. */
  stateDir: string;
  /**
   * berth-mount (the runtime.io_helper directory's): when set, one exec of it makes the namespace,
   * brings lo up and pins it; otherwise `unshare --net=PIN ip link set lo up`.
   */
  helper?: string;
  /** Binaries, overridable for tests. */
  unshare?: string;
  ip?: string;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,250}$/;

export const netnsDir = (stateDir: string) => join(stateDir, "netns");

/** Directories already prepared by this process (mount point + shared propagation). */
const prepared = new Map<string, Promise<string>>();

async function prepareDir(dir: string): Promise<string> {
  let p = prepared.get(dir);
  if (!p) {
    p = prepareDirOnce(dir);
    prepared.set(dir, p);
    p.catch(() => prepared.delete(dir));
  }
  return p;
}

async function prepareDirOnce(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const real = await realpath(dir);
  const m = await findMount(real);
  if (!m) await mountCmd(["--bind", real, real]);
  // Private first, then shared: the directory gets a peer group of its own
  // instead of joining the one of the mount it was bound from.
  if (!(m?.optional.some((o) => o.startsWith("shared:")))) {
    await mountCmd(["--make-private", real]);
    await mountCmd(["--make-shared", real]);
  }
  return real;
}

async function mountCmd(args: string[]): Promise<void> {
  const r = await runCommand("mount", args, { timeoutMs: MOUNT_TIMEOUT_MS });
  if (r.code !== 0) throw internal(`mount ${args.join(" ")} failed: ${describeFailure(r)}`);
}

/**
 * Creates a new network namespace pinned at <stateDir>/netns/<name> with
 * `lo` up, and returns the pin's path. Fails with ALREADY_EXISTS if the pin exists.
 */
export async function createNetns(opts: NetnsOptions, name: string): Promise<string> {
  const path = await reserveNetnsPin(opts, name);
  const r = opts.helper
    ? await runCommand(opts.helper, ["netns", path], { timeoutMs: MOUNT_TIMEOUT_MS })
    : await runCommand(opts.unshare ?? "unshare", [`--net=${path}`, opts.ip ?? "ip", "link", "set", "lo", "up"], { timeoutMs: MOUNT_TIMEOUT_MS });
  if (r.code !== 0) {
    await removeNetns(path).catch(() => {});
    throw internal(`cannot create network namespace ${path}: ${describeFailure(r)}`);
  }
  return path;
}

/**
 * The empty file <stateDir>/netns/<name> a network namespace is then pinned on (by createNetns, or
 * by berth-mount's `pod`); ALREADY_EXISTS if it exists. The caller removes it (removeNetns) on failure.
 */
export async function reserveNetnsPin(opts: Pick<NetnsOptions, "stateDir">, name: string): Promise<string> {
  if (!NAME_RE.test(name)) throw invalidArgument(`invalid network namespace name "${name}"`);
  const dir = await prepareDir(netnsDir(opts.stateDir));
  const path = join(dir, name);
  try {
    await (await open(path, "wx", 0o444)).close();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") throw alreadyExists(`network namespace ${path} already exists`, err);
    throw internal(`cannot create network namespace file ${path}: ${(err as Error).message}`, err);
  }
  return path;
}

/** True if `path` is a pinned (mounted) network namespace. */
export async function isNetns(path: string): Promise<boolean> {
  try {
    return (await statfs(path)).type === NSFS_MAGIC;
  } catch {
    return false;
  }
}

/**
 * Unmounts and unlinks a pinned namespace. Idempotent: a pin that is not
 * mounted or does not exist is fine. The namespace itself lives on while a
 * process is still in it.
 */
export async function removeNetns(path: string): Promise<void> {
  for (let i = 0; i < 8 && await isNetns(path); i++) {
    const r = await runCommand("umount", [path], { timeoutMs: MOUNT_TIMEOUT_MS });
    if (r.code !== 0 && await isNetns(path)) throw internal(`cannot unmount network namespace ${path}: ${describeFailure(r)}`);
  }
  try {
    await rm(path, { force: true });
  } catch (err) {
    throw internal(`cannot remove network namespace file ${path}: ${(err as Error).message}`, err);
  }
}

/** Paths of all pins under <stateDir>/netns (mounted or stale), for leak checks and recovery. */
export async function listNetns(stateDir: string): Promise<string[]> {
  const dir = netnsDir(stateDir);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  return names.filter((n) => !n.startsWith(".")).sort().map((n) => join(dir, n));
}

/** argv prefix that runs `argv` inside the namespace pinned at `path`. */
export const nsenterArgs = (path: string, argv: string[] = []): string[] => ["nsenter", `--net=${path}`, "--", ...argv];

/**
 * Unmounts the <stateDir>/netns directory's own bind mount (tests and
 * uninstall; the daemon keeps it). Pins inside should be removed first.
 */
export async function unmountNetnsDir(stateDir: string): Promise<void> {
  let real: string;
  try {
    real = await realpath(netnsDir(stateDir));
  } catch {
    return;
  }
  prepared.delete(netnsDir(stateDir));
  while (await findMount(real)) {
    const r = await runCommand("umount", [real], { timeoutMs: MOUNT_TIMEOUT_MS });
    if (r.code !== 0) throw internal(`cannot unmount ${real}: ${describeFailure(r)}`);
  }
}
