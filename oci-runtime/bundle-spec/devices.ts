// CRI devices: host device nodes made available in the container.
import { readdir, stat } from "node:fs/promises";
import { posix } from "node:path";
import { invalidArgument } from "../foundation/errdefs.ts";
import type { LinuxDevice, LinuxDeviceCgroup, SpecOpt } from "./types.ts";

export interface CriDevice { containerPath: string; hostPath: string; permissions?: string }

export interface DeviceStat { isChar: boolean; isBlock: boolean; isDir: boolean; rdev: bigint; mode: number; uid: number; gid: number }

export interface DeviceHost {
  stat(path: string): Promise<DeviceStat>;
  readdir(path: string): Promise<string[]>;
}

export const systemDeviceHost: DeviceHost = {
  async stat(p) {
    const s = await stat(p, { bigint: true });
    return { isChar: s.isCharacterDevice(), isBlock: s.isBlockDevice(), isDir: s.isDirectory(), rdev: s.rdev, mode: Number(s.mode & 0o7777n), uid: Number(s.uid), gid: Number(s.gid) };
  },
  readdir: (p) => readdir(p),
};

/** Linux's major()/minor() of a dev_t. */
export function majorMinor(rdev: bigint): { major: number; minor: number } {
  const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
  const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
  return { major, minor };
}

function checkPermissions(p: string | undefined, path: string): string {
  const perms = p || "rwm";
  if (!/^[rwm]{1,3}$/.test(perms) || new Set(perms).size !== perms.length) throw invalidArgument(`device ${path}: invalid permissions "${perms}"`);
  return perms;
}

export async function criDevices(devs: CriDevice[], host: DeviceHost = systemDeviceHost): Promise<{ devices: LinuxDevice[]; rules: LinuxDeviceCgroup[] }> {
  const devices: LinuxDevice[] = [];
  const rules: LinuxDeviceCgroup[] = [];
  const add = (containerPath: string, s: DeviceStat, access: string) => {
    const { major, minor } = majorMinor(s.rdev);
    const type = s.isChar ? "c" : "b";
    devices.push({ type, path: containerPath, major, minor, fileMode: s.mode & 0o777, uid: s.uid, gid: s.gid });
    rules.push({ allow: true, type, major, minor, access });
  };
  for (const d of devs) {
    if (!d.containerPath?.startsWith("/")) throw invalidArgument(`device container path "${d.containerPath}" is not absolute`);
    const access = checkPermissions(d.permissions, d.hostPath);
    let s: DeviceStat;
    try {
      s = await host.stat(d.hostPath);
    } catch (err) {
      throw invalidArgument(`device host path ${d.hostPath} does not exist`, err);
    }
    if (s.isChar || s.isBlock) { add(d.containerPath, s, access); continue; }
    if (!s.isDir) throw invalidArgument(`device host path ${d.hostPath} is not a device`);
    for (const name of await host.readdir(d.hostPath)) {
      const hp = posix.join(d.hostPath, name);
      const cs = await host.stat(hp).catch(() => undefined);
      if (cs && (cs.isChar || cs.isBlock)) add(posix.join(d.containerPath, name), cs, access);
    }
  }
  return { devices, rules };
}

export const withDevices = (devs: CriDevice[], host?: DeviceHost): SpecOpt<unknown> => async (spec) => {
  const { devices, rules } = await criDevices(devs, host);
  const linux = (spec.linux ??= {});
  const paths = new Set(devices.map((d) => d.path));
  linux.devices = [...(linux.devices ?? []).filter((d) => !paths.has(d.path)), ...devices];
  const res = (linux.resources ??= {});
  res.devices = [...(res.devices ?? []), ...rules];
};
