// The container's user: CRI run_as_user / run_as_username / run_as_group or the image's User,
// resolved against the container's own /etc/passwd and /etc/group.
import { invalidArgument } from "../foundation/errdefs.ts";
import { readRootfsFile } from "./rootfs-files.ts";
import type { SpecOpt } from "./types.ts";

export interface PasswdEntry { name: string; uid: number; gid: number; home: string }
export interface GroupEntry { name: string; gid: number; members: string[] }

export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const f = line.split(":");
    if (f.length < 4) continue;
    const uid = toId(f[2]!), gid = toId(f[3]!);
    if (uid === undefined || gid === undefined) continue;
    out.push({ name: f[0]!, uid, gid, home: f[5] ?? "" });
  }
  return out;
}

export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const f = line.split(":");
    if (f.length < 3) continue;
    const gid = toId(f[2]!);
    if (gid === undefined) continue;
    out.push({ name: f[0]!, gid, members: (f[3] ?? "").split(",").map((s) => s.trim()).filter(Boolean) });
  }
  return out;
}

function toId(s: string): number | undefined {
  if (!/^\d+$/.test(s)) return undefined;
  const n = Number(s);
  return n <= 0xffffffff ? n : undefined;
}

export interface UserInput {
  runAsUser?: number;
  runAsUsername?: string;
  runAsGroup?: number;
  /** The image config's User ("name", "uid", "name:group", "uid:gid", ...). */
  imageUser?: string;
  supplementalGroups?: number[];
  /** CRI supplemental_groups_policy: "Merge" (default) adds the groups from /etc/group; "Strict" does not. */
  supplementalGroupsPolicy?: "Merge" | "Strict";
}

export interface ResolvedUser { uid: number; gid: number; additionalGids: number[]; username?: string; home: string }

/** Resolves the user from already-parsed passwd/group files (pure). */
export function resolveUser(i: UserInput, passwd: PasswdEntry[], groups: GroupEntry[]): ResolvedUser {
  let userPart: string | undefined;
  let groupPart: string | undefined;
  if (i.runAsUser !== undefined && i.runAsUsername) {
    throw invalidArgument(`run_as_user (${i.runAsUser}) and run_as_username ("${i.runAsUsername}") are both set; only one may be`);
  }
  for (const [field, v] of [["run_as_user", i.runAsUser], ["run_as_group", i.runAsGroup]] as const) {
    if (v !== undefined && (!Number.isInteger(v) || v < 0 || v > 0xfffffffe)) throw invalidArgument(`invalid ${field} ${v}`);
  }
  if (i.runAsUser !== undefined) userPart = String(i.runAsUser);
  else if (i.runAsUsername) userPart = i.runAsUsername;
  else if (i.imageUser) [userPart, groupPart] = splitUser(i.imageUser);
  if (i.runAsGroup !== undefined) {
    if (userPart === undefined) throw invalidArgument("run_as_group is set without run_as_user, run_as_username or an image user");
    groupPart = String(i.runAsGroup);
  }
  userPart ??= "0";

  let uid = 0, gid = 0;
  let entry: PasswdEntry | undefined;
  if (userPart !== undefined) {
    const n = toId(userPart);
    entry = n !== undefined ? passwd.find((p) => p.uid === n) : passwd.find((p) => p.name === userPart);
    if (n !== undefined) uid = n;
    else if (entry) uid = entry.uid;
    else throw invalidArgument(`user "${userPart}" not found in the container's /etc/passwd`);
    gid = entry?.gid ?? 0;
  }
  if (groupPart !== undefined && groupPart !== "") {
    const n = toId(groupPart);
    if (n !== undefined) gid = n;
    else {
      const g = groups.find((x) => x.name === groupPart);
      if (!g) throw invalidArgument(`group "${groupPart}" not found in the container's /etc/group`);
      gid = g.gid;
    }
  }

  const extra: number[] = [];
  if ((i.supplementalGroupsPolicy ?? "Merge") === "Merge" && entry) {
    for (const g of groups) if (g.members.includes(entry.name)) extra.push(g.gid);
  }
  for (const g of i.supplementalGroups ?? []) {
    if (!Number.isInteger(g) || g < 0 || g > 0xfffffffe) throw invalidArgument(`invalid supplemental group ${g}`);
    extra.push(g);
  }
  const additionalGids = [...new Set([gid, ...extra])];
  return { uid, gid, additionalGids, username: entry?.name, home: entry?.home || "/" };
}

function splitUser(s: string): [string, string | undefined] {
  const i = s.indexOf(":");
  return i < 0 ? [s, undefined] : [s.slice(0, i), s.slice(i + 1)];
}

/** A container's /etc/passwd and /etc/group as text ("" when missing). */
export interface UserFiles { passwd: string; group: string }

/** Reads /etc/passwd and /etc/group inside `rootfs` safely (symlinks resolved inside it). */
export async function readUserFiles(rootfs: string): Promise<UserFiles> {
  const [passwd, group] = await Promise.all([readRootfsFile(rootfs, "/etc/passwd"), readRootfsFile(rootfs, "/etc/group")]);
  return { passwd: passwd ?? "", group: group ?? "" };
}

/**
 * Resolves the user against /etc/passwd and /etc/group: read inside `rootfs`, or given by a
 * function (an image's files from ImageUserFiles).
 */
export async function resolveUserInRootfs(rootfs: string | (() => Promise<UserFiles>), i: UserInput): Promise<ResolvedUser> {
  const f = typeof rootfs === "string" ? await readUserFiles(rootfs) : await rootfs();
  return resolveUser(i, parsePasswd(f.passwd), parseGroup(f.group));
}

/** At most this many images' files are kept by ImageUserFiles. */
export const USER_FILES_CACHE_IMAGES = 128;
/** Files larger than this together are read from each rootfs, never kept. */
export const USER_FILES_CACHE_MAX_BYTES = 64 << 10;

/**
 * /etc/passwd and /etc/group per image. A fresh container rootfs is the image's layers under an
 * empty upper directory, so its files are the image's: read once from the first fresh rootfs of
 * an image, later creates resolve their user without waiting for their own rootfs mount. The key
 * is the image id (the config digest, which names the layers). Bounded in images and bytes; the
 * oldest entry goes first.
 */
export class ImageUserFiles {
  readonly #files = new Map<string, UserFiles>();
  readonly #max: number;
  readonly #maxBytes: number;
  constructor(max = USER_FILES_CACHE_IMAGES, maxBytes = USER_FILES_CACHE_MAX_BYTES) {
    this.#max = max;
    this.#maxBytes = maxBytes;
  }

  /** The image's files: kept ones at once, else read from `rootfs` (a fresh rootfs of the image) once `ready` settles. */
  async get(imageId: string, rootfs: string, ready: Promise<unknown>): Promise<UserFiles> {
    const kept = this.#files.get(imageId);
    if (kept) return kept;
    await ready;
    const f = await readUserFiles(rootfs);
    if (Buffer.byteLength(f.passwd) + Buffer.byteLength(f.group) <= this.#maxBytes) {
      this.#files.delete(imageId);
      this.#files.set(imageId, f);
      while (this.#files.size > this.#max) this.#files.delete(this.#files.keys().next().value!);
    }
    return f;
  }

  get size(): number { return this.#files.size; }
}

/** Sets process.user from the CRI security context or image User, resolved in `rootfs` (the host path of the container's root). */
export const withUser = (rootfs: string, i: UserInput): SpecOpt<unknown> => async (spec) => {
  const u = await resolveUserInRootfs(rootfs, i);
  const p = spec.process!;
  p.user = { ...p.user, uid: u.uid, gid: u.gid, additionalGids: u.additionalGids };
  if (!(p.env ?? []).some((e) => e.startsWith("HOME="))) p.env = [...(p.env ?? []), `HOME=${u.home}`];
};
