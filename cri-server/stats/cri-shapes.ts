// Plain objects shaped like CRI's stats messages (runtime.v1 CpuUsage,
// MemoryUsage, FilesystemUsage, NetworkUsage, ProcessUsage...), so a handler
// can pass them to protobuf-es `create(XSchema, obj)` unchanged.

import type { CpuStats, MemoryStats, PidsStats, PsiData, PsiStats } from "../../oci-runtime/cgroups/stats/types.ts";
import type { DiskUsage } from "../../oci-runtime/foundation/disk-usage.ts";
import type { InterfaceCounters } from "./net-dev.ts";

export interface U64 { value: bigint }
const u64 = (value: bigint): U64 => ({ value });

/** runtime.v1.PsiStats / PsiData (the proto's field names are capitalised). */
export interface CriPsiData { Total: bigint; Avg10: number; Avg60: number; Avg300: number }
export interface CriPsiStats { Full?: CriPsiData; Some?: CriPsiData }
export interface CpuUsage { timestamp: bigint; usageCoreNanoSeconds: U64; usageNanoCores?: U64; psi?: CriPsiStats }
export interface IoUsage { timestamp: bigint; psi?: CriPsiStats }
export interface MemoryUsage {
  timestamp: bigint;
  workingSetBytes: U64;
  availableBytes?: U64;
  usageBytes: U64;
  rssBytes: U64;
  pageFaults: U64;
  majorPageFaults: U64;
  psi?: CriPsiStats;
}
export interface FilesystemUsage { timestamp: bigint; fsId: { mountpoint: string }; usedBytes: U64; inodesUsed: U64 }
export interface NetworkInterfaceUsage { name: string; rxBytes: U64; rxErrors: U64; txBytes: U64; txErrors: U64 }
export interface NetworkUsage { timestamp: bigint; defaultInterface?: NetworkInterfaceUsage; interfaces: NetworkInterfaceUsage[] }
export interface ProcessUsage { timestamp: bigint; processCount: U64 }

/** Shaped like runtime.v1.ContainerStats; `attributes` is passed through from the caller. */
export interface ContainerStats<A> {
  attributes: A;
  cpu?: CpuUsage;
  memory?: MemoryUsage;
  writableLayer?: FilesystemUsage;
  io?: IoUsage;
}

/** Shaped like runtime.v1.PodSandboxStats (linux only). */
export interface PodSandboxStats<PA, CA> {
  attributes: PA;
  linux: {
    cpu?: CpuUsage;
    memory?: MemoryUsage;
    network?: NetworkUsage;
    process?: ProcessUsage;
    io?: IoUsage;
    containers: ContainerStats<CA>[];
  };
}

export function toCpuUsage(cpu: CpuStats, nanoCores: bigint | undefined): CpuUsage {
  const out: CpuUsage = { timestamp: cpu.timestamp, usageCoreNanoSeconds: u64(cpu.usageCoreNanoSeconds) };
  if (nanoCores !== undefined) out.usageNanoCores = u64(nanoCores);
  return out;
}

export function toMemoryUsage(m: MemoryStats): MemoryUsage {
  const out: MemoryUsage = {
    timestamp: m.timestamp,
    workingSetBytes: u64(m.workingSetBytes),
    usageBytes: u64(m.usageBytes),
    rssBytes: u64(m.rssBytes),
    pageFaults: u64(m.pageFaults),
    majorPageFaults: u64(m.majorPageFaults),
  };
  if (m.availableBytes !== undefined) out.availableBytes = u64(m.availableBytes);
  return out;
}

const toPsiData = (d: PsiData): CriPsiData => ({ Total: d.total, Avg10: d.avg10, Avg60: d.avg60, Avg300: d.avg300 });

/** PSI in CRI's shape; undefined (the field left unset, not zeros) when there is none. */
export function toCriPsi(p: PsiStats | undefined): CriPsiStats | undefined {
  if (!p || (!p.full && !p.some)) return undefined;
  return { ...(p.full ? { Full: toPsiData(p.full) } : {}), ...(p.some ? { Some: toPsiData(p.some) } : {}) };
}

export function toFilesystemUsage(d: DiskUsage, mountpoint: string, timestamp: bigint): FilesystemUsage {
  return { timestamp, fsId: { mountpoint }, usedBytes: u64(d.bytes), inodesUsed: u64(d.inodes) };
}

const toInterface = (c: InterfaceCounters): NetworkInterfaceUsage => ({
  name: c.name, rxBytes: u64(c.rxBytes), rxErrors: u64(c.rxErrors), txBytes: u64(c.txBytes), txErrors: u64(c.txErrors),
});

/**
 * Loopback is left out. The default interface is `defaultName` when present,
 * otherwise the first interface.
 */
export function toNetworkUsage(ifaces: InterfaceCounters[], timestamp: bigint, defaultName = "eth0"): NetworkUsage {
  const interfaces = ifaces.filter((i) => i.name !== "lo").map(toInterface);
  const out: NetworkUsage = { timestamp, interfaces };
  const def = interfaces.find((i) => i.name === defaultName) ?? interfaces[0];
  if (def) out.defaultInterface = def;
  return out;
}

export function toProcessUsage(p: PidsStats): ProcessUsage {
  return { timestamp: p.timestamp, processCount: u64(p.count) };
}
