// The pod's infra process: catatonit in pause mode (-P) as pid 1 of the pod, from berth's own minimal rootfs.
import { execFile } from "node:child_process";
import { chmod, copyFile, mkdir, mkdtemp, open, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { internal } from "../../cri-server/errdefs.ts";
import { newSpec } from "./default-spec.ts";
import { withAnnotations, withCgroupsPath, withHostname, withSysctls } from "./misc.ts";
import { withOomScoreAdj } from "./resources.ts";
import { compose, type Mount, type Namespace, type Spec } from "./types.ts";
import type { NamespaceMode } from "./namespaces.ts";
import { modeName } from "./namespaces.ts";

export const INFRA_OOM_SCORE_ADJ = -998;
export const INFRA_BINARY = "/catatonit";

export interface InfraSpecInput {
  /** The infra rootfs (from ensureInfraRootfs), absolute or relative to the bundle. */
  rootfs: string;
  hostname?: string;
  /** The pod's pinned network namespace; omitted with hostNetwork. */
  netnsPath?: string;
  hostNetwork?: boolean;
  /** CRI NamespaceOption.ipc / .pid (NODE = host). */
  ipc?: NamespaceMode;
  pid?: NamespaceMode;
  sysctls?: Record<string, string>;
  cgroupsPath?: string;
  /** The lowest oom_score_adj berthd may set (its own). */
  minOomScoreAdj?: number;
  annotations?: Record<string, string>;
  runAsUser?: number;
  runAsGroup?: number;
  /** Private cgroup namespace (cgroup v2 hosts). */
  cgroupNamespace?: boolean;
}

export function infraNamespaces(i: InfraSpecInput): Namespace[] {
  const out: Namespace[] = [{ type: "mount" }];
  if (!i.hostNetwork) out.push(i.netnsPath ? { type: "network", path: i.netnsPath } : { type: "network" });
  if (modeName(i.ipc) !== "NODE") out.push({ type: "ipc" });
  // UTS follows the network: a host-network pod keeps the host's name
  if (!i.hostNetwork) out.push({ type: "uts" });
  if (modeName(i.pid) !== "NODE") out.push({ type: "pid" });
  if (i.cgroupNamespace) out.push({ type: "cgroup" });
  return out;
}

const INFRA_MOUNTS: Mount[] = [
  { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] },
  { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
  { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
];

/** The OCI spec of a pod's infra process. */
export async function buildInfraSpec(i: InfraSpecInput): Promise<Spec> {
  const spec = newSpec(i.rootfs);
  spec.root = { path: i.rootfs, readonly: true };
  spec.process!.args = [INFRA_BINARY, "-P"];
  spec.process!.env = ["PATH=/"];
  spec.process!.user = { uid: i.runAsUser ?? 0, gid: i.runAsGroup ?? 0 };
  spec.process!.noNewPrivileges = true;
  spec.process!.capabilities = { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] };
  spec.mounts = INFRA_MOUNTS.map((m) => ({ ...m, options: [...(m.options ?? [])] }));
  spec.linux = { namespaces: infraNamespaces(i), resources: { devices: [{ allow: false, access: "rwm" }] }, maskedPaths: [], readonlyPaths: [] };
  const hostIpc = modeName(i.ipc) === "NODE";
  return compose(spec, undefined, [
    ...(i.hostname && !i.hostNetwork ? [withHostname(i.hostname)] : []),
    withSysctls(i.sysctls ?? {}, { hostNetwork: i.hostNetwork, hostIpc }),
    ...(i.cgroupsPath ? [withCgroupsPath(i.cgroupsPath)] : []),
    withOomScoreAdj(INFRA_OOM_SCORE_ADJ, i.minOomScoreAdj),
    withAnnotations(i.annotations ?? {}),
  ]);
}

/** True when the ELF file has no PT_INTERP program header (statically linked). */
export async function isStaticElf(path: string): Promise<boolean> {
  const fh = await open(path, "r");
  try {
    const hdr = Buffer.alloc(64);
    await fh.read(hdr, 0, 64, 0);
    if (hdr.readUInt32BE(0) !== 0x7f454c46) throw internal(`${path} is not an ELF binary`);
    if (hdr[4] !== 2 || hdr[5] !== 1) throw internal(`${path}: only 64-bit little-endian ELF is supported`);
    const phoff = Number(hdr.readBigUInt64LE(0x20));
    const phentsize = hdr.readUInt16LE(0x36);
    const phnum = hdr.readUInt16LE(0x38);
    const ph = Buffer.alloc(phentsize * phnum);
    await fh.read(ph, 0, ph.length, phoff);
    for (let k = 0; k < phnum; k++) if (ph.readUInt32LE(k * phentsize) === 3) return false;
    return true;
  } finally {
    await fh.close();
  }
}

/** Shared libraries a dynamic binary needs, from ldd (absolute paths). */
async function sharedLibs(binary: string): Promise<string[]> {
  const { stdout } = await promisify(execFile)("ldd", [binary]);
  const libs: string[] = [];
  for (const line of stdout.split("\n")) {
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line);
    if (m) libs.push(m[1]!);
  }
  return libs;
}

/**
 * Builds `<stateDir>/infra-rootfs` once: catatonit (and its libraries if it is dynamic) plus the
 * mount points runc needs. Built in a temp dir and renamed into place, so a crash leaves no half rootfs.
 */
export async function ensureInfraRootfs(stateDir: string, catatonit = "/usr/bin/catatonit"): Promise<string> {
  const dest = join(stateDir, "infra-rootfs");
  try {
    await stat(join(dest, INFRA_BINARY));
    return dest;
  } catch {
    // build it
  }
  await mkdir(stateDir, { recursive: true });
  const tmp = await mkdtemp(join(stateDir, ".infra-rootfs-"));
  try {
    for (const d of ["proc", "dev", "sys", "etc"]) await mkdir(join(tmp, d), { mode: 0o755 });
    await copyFile(catatonit, join(tmp, INFRA_BINARY));
    await chmod(join(tmp, INFRA_BINARY), 0o755);
    if (!(await isStaticElf(catatonit))) {
      for (const lib of await sharedLibs(catatonit)) {
        await mkdir(join(tmp, dirname(lib)), { recursive: true });
        await copyFile(lib, join(tmp, lib));
      }
    }
    await writeFile(join(tmp, "etc", "passwd"), "root:x:0:0:root:/:/catatonit\n");
    await writeFile(join(tmp, "etc", "group"), "root:x:0:\n");
    try {
      await rename(tmp, dest);
    } catch (err) {
      // another caller finished first: keep theirs (pods may be running from it)
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "ENOTEMPTY" && code !== "EEXIST") throw err;
      await rm(tmp, { recursive: true, force: true });
    }
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw internal(`cannot build infra rootfs in ${dest}: ${(err as Error).message}`, err);
  }
  return dest;
}
