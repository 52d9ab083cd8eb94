// Layer snapshots: <root>/<chainid-hex>/fs, one directory per chain id, shared by every image.
// New layers unpack into <root>/tmp-*/fs and are renamed into place when complete.
// Container rootfs: overlay of the image's layer dirs plus <root>/containers/<key>/{upper,work}.
import { sha256Hex } from "../../oci-runtime/foundation/builtins.ts";
import { uniqueSuffix } from "../../oci-runtime/foundation/unique.ts";
import { access, constants as fsConstants, lstat, mkdir, readdir, readlink, rename, rm, stat, symlink, unlink } from "node:fs/promises";
import path from "node:path";
import { failedPrecondition, internal } from "../../oci-runtime/foundation/errdefs.ts";
import { fsyncDir } from "../../oci-runtime/foundation/atomic-file.ts";
import { findMount } from "../../oci-runtime/foundation/mountinfo.ts";
import { runCommand } from "../../oci-runtime/foundation/run-command.ts";

/** chain[0] = diff[0]; chain[i] = sha256(chain[i-1] + " " + diff[i]). */
export function chainIds(diffIds: string[]): string[] {
  const out: string[] = [];
  for (const d of diffIds) {
    out.push(out.length ? "sha256:" + sha256Hex(`${out.at(-1)} ${d}`) : d);
  }
  return out;
}

const hex = (id: string) => id.replace(/^sha256:/, "");
/** Page-size limit of mount(2) data, less a margin for the other options. */
const MOUNT_DATA_LIMIT = 4096 - 512;
/** Lengths of l/ link names tried, shortest first; 64 is the whole chain id. */
const LINK_LENGTHS = [12, 16, 24, 32, 48, 64];
const linkTarget = (chainId: string) => `../${hex(chainId)}/fs`;
/** Most time chattr may take to flag a directory (one ioctl). */
const CHATTR_TIMEOUT_MS = 5_000;

export class Snapshotter {
  readonly root: string;
  /** berth-layer, which mounts the overlay in one system call; without it, mount(8). */
  readonly #mountHelper: string | undefined;
  #helperMounts = true;
  /**
   * Why init() could not make the root and containers/ ext4 top directories (markTopDirs), or
   * undefined when it did.
   */
  topDirsUnset: string | undefined;
  constructor(root: string, mountHelper?: string) {
    this.root = root;
    this.#mountHelper = mountHelper;
  }

  async init() {
    // 0700 down to each layer's and container's dir; a layer's fs/ and a container's upper/ are
    // "/" inside containers and keep 0755.
    await mkdir(path.join(this.root, "containers"), { recursive: true, mode: 0o700 });
    await mkdir(path.join(this.root, "empty"), { recursive: true, mode: 0o700 });
    await mkdir(path.join(this.root, "empty", "fs"), { recursive: true, mode: 0o755 });
    this.topDirsUnset = await this.#markTopDirs();
    await this.removePartial();
  }

  /** Removes layers being unpacked or removed (tmp-*): at start, or once their writers are gone. */
  async removePartial() {
    for (const n of await readdir(this.root)) {
      if (n.startsWith("tmp-")) await rm(path.join(this.root, n), { recursive: true, force: true, maxRetries: 3 });
    }
  }

  /**
   * Flags the root (whose subdirectories are the layers) and containers/ (the containers' upper
   * and work dirs) as top directories for ext4's Orlov allocator (FS_TOPDIR_FL, chattr +T): each
   * new layer or container dir is then placed as a top-level directory is, spread over the block
   * groups with free inodes and blocks, and its files with it, instead of in its parent's group.
   * The subdirectories are unrelated trees, which is what the flag is for.
   *
   * It matters most on ext4 without a journal (this development machine's root): allocating an
   * inode there passes over every free inode of the group that was freed in the last one to five
   * minutes (ext4's recently_deleted, one buffer-cache lookup each), and removed layers leave
   * thousands. Pulling the bench's 5,000-file image after removing it, berth's unpack spent 470
   * of its 546 open(2) samples in that scan; with the flag, a pull took 645 instead of 725 ms and
   * 0.94 instead of 1.14 s of CPU (median of 6, alternating).
   *
   * Best effort: other file systems do not have the flag, and chattr (e2fsprogs) may be absent.
   * Returns why it was not set, or undefined.
   */
  async #markTopDirs(): Promise<string | undefined> {
    const dirs = [path.resolve(this.root), path.resolve(this.root, "containers")];
    const r = await runCommand("chattr", ["+T", ...dirs], { timeoutMs: CHATTR_TIMEOUT_MS });
    if (r.code === 0) return undefined;
    if (r.spawnError) return `chattr could not run: ${r.spawnError.message}`;
    return (r.stderr.trim() || r.stdout.trim() || `chattr exited with ${r.code ?? r.signal}`).slice(0, 500);
  }

  dir(chainId: string) { return path.join(this.root, hex(chainId), "fs"); }

  async has(chainId: string): Promise<boolean> {
    return stat(this.dir(chainId)).then((s) => s.isDirectory(), () => false);
  }

  /** A fresh temporary layer directory; pass it to commit() or discard(). */
  async prepare(): Promise<{ tmp: string; fs: string }> {
    const tmp = path.join(this.root, `tmp-${uniqueSuffix()}`);
    await mkdir(tmp, { mode: 0o700 });
    await mkdir(path.join(tmp, "fs"), { mode: 0o755 });
    return { tmp, fs: path.join(tmp, "fs") };
  }

  async commit(tmp: string, chainId: string) {
    const final = path.join(this.root, hex(chainId));
    try {
      await rename(tmp, final);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "ENOTEMPTY" && code !== "EEXIST") throw err;
      await rm(tmp, { recursive: true, force: true }); // someone else committed the same chain
    }
    await fsyncDir(this.root);
  }

  async discard(tmp: string) { await rm(tmp, { recursive: true, force: true }); }

  async remove(chainId: string) {
    // Rename first so a crash never leaves a half-deleted layer under its chain id.
    const dir = path.join(this.root, hex(chainId));
    const doomed = path.join(this.root, `tmp-rm-${uniqueSuffix()}`);
    // Only links that point at this layer: another layer may hold a link of the same prefix.
    for (const len of LINK_LENGTHS) {
      const link = path.join(this.root, "l", hex(chainId).slice(0, len));
      if (await readlink(link).catch(() => undefined) === linkTarget(chainId)) await unlink(link).catch(() => {});
    }
    try { await rename(dir, doomed); } catch { return; }
    await rm(doomed, { recursive: true, force: true });
  }

  async list(): Promise<string[]> {
    return (await readdir(this.root)).filter((n) => /^[a-f0-9]{64}$/.test(n)).map((n) => `sha256:${n}`);
  }

  containerDir(key: string) {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(key)) throw failedPrecondition(`invalid rootfs key ${JSON.stringify(key)}`);
    return path.join(this.root, "containers", key);
  }
  upperDir(key: string) { return path.join(this.containerDir(key), "upper"); }

  /** Creates upper/work for `key` (idempotent). */
  async prepareContainer(key: string) {
    await mkdir(this.containerDir(key), { recursive: true, mode: 0o700 });
    await mkdir(path.join(this.containerDir(key), "upper"), { recursive: true, mode: 0o755 });
    await mkdir(path.join(this.containerDir(key), "work"), { recursive: true, mode: 0o700 });
  }

  /**
   * Mounts the overlay for `key` at `target`. Lower dirs are given relative to this root
   * (mount runs with it as cwd) to stay within the kernel's one-page limit for options.
   */
  async mount(key: string, layerChainIds: string[], target: string) {
    const top = [...layerChainIds].reverse();
    const rel = path.relative(this.root, this.containerDir(key));
    const options = (lowers: string[]) => `lowerdir=${lowers.join(":")},upperdir=${rel}/upper,workdir=${rel}/work`;
    let data = options(top.length ? top.map((c) => `${hex(c)}/fs`) : ["empty/fs"]);
    if (data.length > MOUNT_DATA_LIMIT) {
      // Many layers: short symlinks l/<12 hex> -> ../<chainid>/fs (as docker's overlay2 does).
      await mkdir(path.join(this.root, "l"), { recursive: true, mode: 0o700 });
      const names: string[] = [];
      for (const c of top) names.push(`l/${await this.linkFor(c)}`);
      data = options(names);
    }
    if (data.length > MOUNT_DATA_LIMIT) {
      throw failedPrecondition(`image has ${layerChainIds.length} layers, more than an overlay mount can take (options of ${data.length} bytes)`);
    }
    await mkdir(target, { recursive: true, mode: 0o700 });
    // berth-layer: 0.6-0.8 ms less per mount than util-linux mount (p50 of 40, measured), which
    // also parses its tables. mount(8) from then on when the helper cannot run or does not know
    // the option (an older berth-layer answers with its usage, exit 2).
    if (this.#mountHelper && this.#helperMounts) {
      const r = await runCommand(this.#mountHelper, ["--mount-overlay", path.resolve(this.root), data, path.resolve(target)], { cwd: this.root });
      if (!r.spawnError && r.code === 0) return;
      // A helper that did start and failed otherwise (or whose fate is unknown) is a failure, not a reason to mount twice.
      const cannotRun = r.spawnError ? await access(this.#mountHelper, fsConstants.X_OK).then(() => false, () => true) : r.code === 2;
      if (!cannotRun) throw internal(`mount overlay at ${target} failed: ${r.spawnError?.message ?? (r.stderr.trim() || `exit ${r.code}`)}`);
      this.#helperMounts = false;
    }
    await exec("mount", ["-t", "overlay", "overlay", "-o", data, target], this.root, `mount overlay at ${target}`);
  }

  /**
   * The name under l/ of a link to `chainId`'s fs: its first 12 hex, lengthened while an
   * existing link of that name serves another layer (a prefix collision); the full 64 hex
   * name is this layer's alone, and a wrong link of that name is replaced.
   */
  private async linkFor(chainId: string): Promise<string> {
    const want = linkTarget(chainId);
    for (const len of LINK_LENGTHS) {
      const name = hex(chainId).slice(0, len);
      const link = path.join(this.root, "l", name);
      const made = await symlink(want, link).then(() => true, (err: NodeJS.ErrnoException) => {
        if (err.code !== "EEXIST") throw err;
        return false;
      });
      if (made) return name;
      if (await readlink(link).catch(() => undefined) === want) return name;
      if (len === 64) {
        await rm(link, { recursive: true, force: true });
        await symlink(want, link);
        return name;
      }
    }
    throw internal(`no link name for layer ${chainId}`);
  }

  async unmount(target: string) {
    await exec("umount", [target], this.root, `unmount ${target}`).catch(async (err) => {
      if (!(await isMountPoint(target))) return;
      await exec("umount", ["-l", target], this.root, `unmount ${target}`).catch(() => { throw err; });
    });
  }

  async removeContainer(key: string) { await rm(this.containerDir(key), { recursive: true, force: true }); }
}

/**
 * True if another filesystem is mounted at `p` (its device differs from its parent's): two
 * lstat calls, where mountinfo is read whole on the main thread (its size grows with every pod's
 * mounts). Sees every overlay, tmpfs or other filesystem mounted there, not a bind mount of the
 * parent's own filesystem: for checks on directories berth itself mounts overlays on.
 */
export async function isOtherFilesystem(p: string): Promise<boolean> {
  const abs = path.resolve(p);
  try {
    const [self, parent] = await Promise.all([lstat(abs), lstat(path.dirname(abs))]);
    return self.dev !== parent.dev;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
}

/** True if `p` is a mount point (per /proc/self/mountinfo). */
export async function isMountPoint(p: string): Promise<boolean> {
  return (await findMount(path.resolve(p))) !== undefined;
}

async function exec(cmd: string, args: string[], cwd: string, what: string): Promise<void> {
  const r = await runCommand(cmd, args, { cwd });
  if (r.spawnError) throw internal(`${what}: ${r.spawnError.message}`, r.spawnError);
  if (r.code !== 0) throw internal(`${what} failed: ${r.stderr.trim() || `exit ${r.code}`}`);
}
