// Directory and file modes of berth's own trees (`root`, `state`). Nothing under them is for
// a non-root host user: an image layer may ship setuid-root binaries and device nodes, a
// container may create more in its upper directory, and blobs may be private (the class of
// CVE-2021-41091). So every directory berth creates is 0700 (its parents keep everyone out),
// files 0600. Search-only (0711, no listing) are: `state` itself and the directories on the way to
// the CRI socket (0660, for its group), and `<state>/userns`, through which the roots of user-namespaced
// containers (non-root host uids) reach their prepared mounts (oci-runtime/mounts).
//
// ensureDir*() create a directory with an explicit mode and chmod it afterwards, so the mode
// does not depend on the umask nor on what an older version left there. fixDirModes() runs at
// start-up and repairs what older versions created: it walks only the known top-level
// directories and their direct children, never a layer or a container's files.
import { chmodSync, lstatSync, mkdirSync, readdirSync, type Stats } from "node:fs";
import { chmod, mkdir } from "node:fs/promises";
import { dirname, join, relative, sep } from "node:path";
import type { Logger } from "./log.ts";

/** Directories berth keeps to itself. */
export const PRIVATE_DIR_MODE = 0o700;
/** Files berth keeps to itself (records, bundles' config.json, process files). */
export const PRIVATE_FILE_MODE = 0o600;
/** A directory only traversed on the way to the CRI socket: search without listing. */
export const TRAVERSE_DIR_MODE = 0o711;

/** mkdir -p `dir`, then chmod it to `mode` (umask-independent; fixes an existing directory too). */
export async function ensureDir(dir: string, mode: number = PRIVATE_DIR_MODE): Promise<void> {
  await mkdir(dir, { recursive: true, mode });
  await chmod(dir, mode);
}

export function ensureDirSync(dir: string, mode: number = PRIVATE_DIR_MODE): void {
  mkdirSync(dir, { recursive: true, mode });
  chmodSync(dir, mode);
}

export interface ModeFix { path: string; from: number; to: number }

export interface DirModesInput {
  root: string;
  state: string;
  /** The CRI socket: left as it is (0660), and the directories from `state` (or `root`) down to it stay traversable. */
  socket: string;
}

/** Directories whose direct children fixDirModes() also visits, relative to `root` or `state`. */
const ROOT_KNOWN = ["content", "content/blobs", "snapshots", "snapshots/containers", "containers", "sandboxes", "images", "leases", "cni-cache"];
// (not "infra": its child is the infra rootfs, whose root directory must stay 0755 inside the container.)
const STATE_KNOWN = ["containers", "sandboxes", "runtimes", "exits", "sockets"];
/** Files inside each entry of these directories that hold a process spec: 0600. */
const BUNDLE_FILES: Record<string, string[]> = { containers: ["config.json"], sandboxes: ["bundle/config.json"] };

const octal = (m: number) => `0${(m & 0o7777).toString(8)}`;

/**
 * Repairs the modes left by older versions: `root` 0700, `state` 0711 (search-only), every entry of each and of their known sub-directories without group or other access,
 * and bundles' config.json 0600. Symlinks, sockets, fifos and mount contents are not touched.
 * Returns what it changed (and logs each change).
 */
export function fixDirModes(input: DirModesInput, log?: Logger): ModeFix[] {
  const fixes: ModeFix[] = [];
  const traverse = traversePath(input);
  const set = (path: string, st: Stats, to: number) => {
    const from = st.mode & 0o7777;
    if (from === to) return;
    try {
      chmodSync(path, to);
      fixes.push({ path, from, to });
      log?.info("fixed the mode of a berth path", { path, from: octal(from), to: octal(to) });
    } catch (err) {
      log?.warn("cannot fix the mode of a berth path", { path, from: octal(from), to: octal(to), error: err });
    }
  };
  const stat = (path: string): Stats | undefined => {
    try { return lstatSync(path); } catch { return undefined; }
  };
  /** Strips group and other bits (and setuid/setgid/sticky) from a directory or regular file berth owns. */
  const privatise = (path: string) => {
    if (path === input.socket) return;
    const st = stat(path);
    if (!st) return;
    if (st.isDirectory()) set(path, st, traverse.has(path) ? TRAVERSE_DIR_MODE : PRIVATE_DIR_MODE);
    else if (st.isFile()) set(path, st, st.mode & 0o700);
  };
  const children = (dir: string): string[] => {
    const st = stat(dir);
    if (!st?.isDirectory()) return [];
    try { return readdirSync(dir).map((n) => join(dir, n)); } catch { return []; }
  };
  for (const [top, known] of [[input.root, ROOT_KNOWN], [input.state, STATE_KNOWN]] as const) {
    privatise(top);
    for (const c of children(top)) privatise(c);
    for (const k of known) for (const c of children(join(top, k))) privatise(c);
  }
  for (const [dir, files] of Object.entries(BUNDLE_FILES)) {
    for (const entry of children(join(input.state, dir))) {
      for (const f of files) {
        const path = join(entry, f);
        const st = stat(path);
        if (st?.isFile()) set(path, st, PRIVATE_FILE_MODE);
      }
    }
  }
  return fixes;
}

/** Entries of `state` that stay search-only and are not walked (their owner code sets their children's modes and owners). */
export const STATE_TRAVERSE_CHILDREN = ["userns"];

/**
 * The search-only directories: `state`, its entries in STATE_TRAVERSE_CHILDREN, and the directories
 * below `state` or `root` that lead to the socket when it lives under one of them.
 */
export function traversePath(input: DirModesInput): Set<string> {
  const out = new Set<string>([input.state, ...STATE_TRAVERSE_CHILDREN.map((c) => join(input.state, c))]);
  for (const top of [input.state, input.root]) {
    const rel = relative(top, dirname(input.socket));
    if (rel.startsWith("..") || rel.startsWith(sep)) continue;
    out.add(top);
    let dir = top;
    for (const part of rel.split(sep).filter(Boolean)) {
      dir = join(dir, part);
      out.add(dir);
    }
  }
  return out;
}

/** The mode `dir` should have: traversable when it leads to the socket, private otherwise. */
export const modeFor = (input: DirModesInput, dir: string): number => traversePath(input).has(dir) ? TRAVERSE_DIR_MODE : PRIVATE_DIR_MODE;
