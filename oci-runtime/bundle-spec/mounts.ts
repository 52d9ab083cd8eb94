// Pod files (/etc/hosts, /etc/resolv.conf, /etc/hostname, /dev/shm) and CRI volume mounts.
import { describeFailure, MOUNT_TIMEOUT_MS, runCommand } from "../foundation/run-command.ts";
import { realpath } from "node:fs/promises";
import { posix } from "node:path";
import { internal, invalidArgument } from "../foundation/errdefs.ts";
import { isShared, isSlave, mountOf, readMountInfo, type MountInfo } from "../foundation/mountinfo.ts";
import type { Mount, Spec, SpecOpt } from "./types.ts";

export interface PodFiles {
  hostsPath?: string;
  resolvPath?: string;
  hostnamePath?: string;
  /** The pod's /dev/shm (a tmpfs on the host) or the host's /dev/shm for host IPC. */
  shmPath?: string;
  /** Bind the files read-only (containerd does so for read-only rootfs containers). */
  readonly?: boolean;
}

/** Replaces mounts at the same destinations, keeping order otherwise. */
export function putMounts(spec: Spec, mounts: Mount[]): void {
  const dests = new Set(mounts.map((m) => posix.normalize(m.destination)));
  spec.mounts = [...(spec.mounts ?? []).filter((m) => !dests.has(posix.normalize(m.destination))), ...mounts];
}

export const withPodFiles = (f: PodFiles): SpecOpt<unknown> => (spec) => {
  const rw = f.readonly ? "ro" : "rw";
  const bind = (destination: string, source: string, opt = rw): Mount =>
    ({ destination, type: "bind", source, options: ["rbind", "rprivate", opt] });
  const out: Mount[] = [];
  if (f.hostnamePath) out.push(bind("/etc/hostname", f.hostnamePath));
  if (f.hostsPath) out.push(bind("/etc/hosts", f.hostsPath));
  if (f.resolvPath) out.push(bind("/etc/resolv.conf", f.resolvPath));
  if (f.shmPath) out.push({ destination: "/dev/shm", type: "bind", source: f.shmPath, options: ["rbind", "rprivate", "nosuid", "nodev", "noexec", "rw"] });
  putMounts(spec, out);
};

export const Propagation = { PRIVATE: 0, HOST_TO_CONTAINER: 1, BIDIRECTIONAL: 2 } as const;
export type PropagationName = keyof typeof Propagation;

export interface CriMount {
  containerPath: string;
  hostPath: string;
  readonly?: boolean;
  /** CRI MountPropagation: by name or by its proto number. */
  propagation?: PropagationName | 0 | 1 | 2;
  recursiveReadOnly?: boolean;
}

/** Host operations a mount needs; the default uses the real system. */
export interface MountHost {
  realpath(path: string): Promise<string>;
  mountInfo(): Promise<MountInfo[]>;
  makeRShared(mountPoint: string): Promise<void>;
}

export const systemMountHost: MountHost = {
  realpath: (p) => realpath(p),
  mountInfo: () => readMountInfo(),
  async makeRShared(mountPoint) {
    const r = await runCommand("mount", ["--make-rshared", mountPoint], { timeoutMs: MOUNT_TIMEOUT_MS });
    if (r.code !== 0 || r.spawnError) throw internal(`cannot make mount ${mountPoint} shared: ${describeFailure(r)}`);
  },
};

export interface CriMountContext {
  host?: MountHost;
  /** Whether the OCI runtime supports the "rro" mount option (see OciRuntime.features()). */
  supportsRecursiveReadOnly?: boolean;
}

const propagationName = (p: CriMount["propagation"]): PropagationName => {
  if (p === undefined) return "PRIVATE";
  if (typeof p === "number") {
    const name = (Object.keys(Propagation) as PropagationName[]).find((k) => Propagation[k] === p);
    if (!name) throw invalidArgument(`unknown mount propagation ${p}`);
    return name;
  }
  if (!(p in Propagation)) throw invalidArgument(`unknown mount propagation "${p}"`);
  return p;
};

/** Validates and converts CRI mounts into OCI bind mounts, making host mounts shared where propagation needs it. */
export async function criMounts(spec: Spec, mounts: CriMount[], ctx: CriMountContext = {}): Promise<Mount[]> {
  const host = ctx.host ?? systemMountHost;
  const out: Mount[] = [];
  let info: MountInfo[] | undefined;
  for (const m of mounts) {
    const dest = m.containerPath;
    if (!dest || !dest.startsWith("/")) throw invalidArgument(`mount container path "${dest}" is not absolute`);
    if (dest.split("/").includes("..")) throw invalidArgument(`mount container path "${dest}" contains ".."`);
    if (!m.hostPath) throw invalidArgument(`mount for ${dest} has an empty host path`);
    const prop = propagationName(m.propagation);
    if (m.recursiveReadOnly) {
      if (!m.readonly) throw invalidArgument(`mount ${dest}: recursive_read_only requires readonly to be true (got readonly false)`);
      if (prop !== "PRIVATE") throw invalidArgument(`mount ${dest}: recursive_read_only requires private propagation, got PROPAGATION_${prop}`);
      if (!ctx.supportsRecursiveReadOnly) throw invalidArgument(`mount ${dest}: recursive_read_only is not supported by this runtime handler (neither its "rro" option nor berth's mount_setattr works here)`);
    }
    let source: string;
    try {
      source = await host.realpath(m.hostPath);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ENOTDIR") throw invalidArgument(`mount host path ${m.hostPath} does not exist`, err);
      throw invalidArgument(`mount host path ${m.hostPath}: ${(err as Error).message}`, err);
    }
    const options = ["rbind"];
    if (prop === "PRIVATE") options.push("rprivate");
    else {
      info ??= await host.mountInfo();
      const hm = mountOf(info, source);
      if (!hm) throw internal(`no mount found for host path ${source}`);
      const ok = prop === "BIDIRECTIONAL" ? isShared(hm) : isShared(hm) || isSlave(hm);
      if (!ok) {
        await host.makeRShared(hm.mountPoint);
        info = await host.mountInfo();
      }
      if (prop === "BIDIRECTIONAL") {
        options.push("rshared");
        spec.linux = { ...spec.linux, rootfsPropagation: "rshared" };
      } else {
        options.push("rslave");
        if (spec.linux?.rootfsPropagation !== "rshared") spec.linux = { ...spec.linux, rootfsPropagation: "rslave" };
      }
    }
    options.push(m.recursiveReadOnly ? "rro" : m.readonly ? "ro" : "rw");
    out.push({ destination: posix.normalize(dest), type: "bind", source, options });
  }
  // parents before children
  return out.map((m, i) => ({ m, i, depth: m.destination.split("/").filter(Boolean).length }))
    .sort((a, b) => a.depth - b.depth || a.i - b.i).map((x) => x.m);
}

export const withCriMounts = (mounts: CriMount[], ctx: CriMountContext = {}): SpecOpt<unknown> => async (spec) => {
  putMounts(spec, await criMounts(spec, mounts, ctx));
};
