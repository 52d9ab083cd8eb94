// The base spec every container starts from: default mounts, devices and rlimits.
import { readFileSync } from "node:fs";
import type { LinuxDeviceCgroup, Mount, Spec, SpecOpt } from "./types.ts";

export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
export const DEFAULT_SHM_SIZE = 64 * 1024 * 1024;

/** An empty spec for `rootfs` (a path, usually relative to the bundle: "rootfs"). */
export function newSpec(rootfs: string): Spec {
  return {
    ociVersion: "1.0.2",
    root: { path: rootfs, readonly: false },
    process: { terminal: false, user: { uid: 0, gid: 0 }, args: [], env: [`PATH=${DEFAULT_PATH}`], cwd: "/" },
    mounts: [],
    linux: { namespaces: [{ type: "mount" }], resources: {} },
  };
}

/** Default mounts: proc, /dev tmpfs, devpts, shm (replaced by the pod's), mqueue, sysfs (ro unless privileged), cgroup ro. */
export function defaultMounts(o: { privileged?: boolean; shmSizeBytes?: number } = {}): Mount[] {
  const ro = o.privileged ? "rw" : "ro";
  return [
    { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] },
    { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
    { destination: "/dev/pts", type: "devpts", source: "devpts", options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
    { destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", `size=${o.shmSizeBytes ?? DEFAULT_SHM_SIZE}`] },
    { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
    { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", ro] },
    { destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["nosuid", "noexec", "nodev", "relatime", ro] },
  ];
}

export const withDefaultMounts = (o: { privileged?: boolean; shmSizeBytes?: number } = {}): SpecOpt<unknown> => (spec) => {
  const mine = defaultMounts(o);
  const taken = new Set(mine.map((m) => m.destination));
  spec.mounts = [...mine, ...(spec.mounts ?? []).filter((m) => !taken.has(m.destination))];
};

/** Device cgroup rules: deny all, then the devices every container may use (null, zero, full, tty, random, urandom, pts, ptmx, console, tun). */
export const DEFAULT_DEVICE_RULES: LinuxDeviceCgroup[] = [
  { allow: false, access: "rwm" },
  { allow: true, type: "c", major: 1, minor: 3, access: "rwm" },
  { allow: true, type: "c", major: 1, minor: 5, access: "rwm" },
  { allow: true, type: "c", major: 1, minor: 7, access: "rwm" },
  { allow: true, type: "c", major: 5, minor: 0, access: "rwm" },
  { allow: true, type: "c", major: 1, minor: 8, access: "rwm" },
  { allow: true, type: "c", major: 1, minor: 9, access: "rwm" },
  { allow: true, type: "c", major: 136, access: "rwm" },
  { allow: true, type: "c", major: 5, minor: 2, access: "rwm" },
  { allow: true, type: "c", major: 5, minor: 1, access: "rwm" },
  { allow: true, type: "c", major: 10, minor: 200, access: "rwm" },
];

export const withDefaultDevices = (): SpecOpt<unknown> => (spec) => {
  const linux = (spec.linux ??= {});
  const res = (linux.resources ??= {});
  res.devices = [...DEFAULT_DEVICE_RULES, ...(res.devices ?? []).filter((d) => d.allow)];
};

/** The hard "Max open files" limit of this process from /proc/self/limits text (pure). */
export function hardNofile(limitsText: string): number | undefined {
  const m = /^Max open files\s+\S+\s+(\S+)/m.exec(limitsText);
  if (!m) return undefined;
  return m[1] === "unlimited" ? Infinity : Number(m[1]);
}

/**
 * RLIMIT_NOFILE 1048576, lowered to this process's own hard limit: without CAP_SYS_RESOURCE
 * the runtime cannot raise it, and the container create would fail.
 */
export function defaultRlimits(limitsText = readOwnLimits()): { type: string; hard: number; soft: number }[] {
  const n = Math.min(1048576, hardNofile(limitsText) ?? 1048576);
  return [{ type: "RLIMIT_NOFILE", hard: n, soft: n }];
}

function readOwnLimits(): string {
  try {
    return readFileSync("/proc/self/limits", "utf8");
  } catch {
    return "";
  }
}

export const withDefaultRlimits = (limits = defaultRlimits()): SpecOpt<unknown> => (spec) => {
  const p = spec.process!;
  const set = new Set((p.rlimits ?? []).map((r) => r.type));
  p.rlimits = [...(p.rlimits ?? []), ...limits.filter((r) => !set.has(r.type)).map((r) => ({ ...r }))];
};

/** newSpec + default mounts, devices and rlimits. */
export function defaultSpec(o: { rootfs: string; privileged?: boolean; shmSizeBytes?: number }): Spec {
  const spec = newSpec(o.rootfs);
  void withDefaultMounts(o)(spec, undefined);
  void withDefaultDevices()(spec, undefined);
  void withDefaultRlimits()(spec, undefined);
  return spec;
}
