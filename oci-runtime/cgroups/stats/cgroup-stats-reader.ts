// Reads a container's (or pod's) cgroup statistics on cgroup v1, v2 and
// hybrid hosts. Mount points come from /proc/self/mountinfo, read once.

import { stat } from "node:fs/promises";
import { notFound } from "../../foundation/errdefs.ts";
import { epochNanos } from "./clock.ts";
import { type CgroupMode, type CgroupMounts, cgroupDir, cgroupMode, loadCgroupMounts } from "./mountinfo.ts";
import type { CgroupStats, CgroupStatsSource } from "./types.ts";
import { readCpuV1, readHugetlbV1, readMemoryV1, readPids } from "./v1.ts";
import { readCpuV2, readHugetlbV2, readMemoryV2 } from "./v2.ts";
import { readPressure } from "./psi.ts";

export interface CgroupStatsReaderOptions {
  /** Mounts to use instead of parsing mountinfo (tests point these at a temp dir). */
  mounts?: CgroupMounts;
  /** mountinfo file to parse; default /proc/self/mountinfo. */
  mountinfoPath?: string;
  /** Epoch-nanosecond clock stamped on each sample. */
  now?: () => bigint;
}

/** The directories a cgroupsPath maps to, per controller (absent when not mounted). */
export interface CgroupDirs {
  mode: CgroupMode;
  cpu?: string;
  cpuacct?: string;
  memory?: string;
  pids?: string;
  hugetlb?: string;
  unified?: string;
}

export class CgroupStatsReader implements CgroupStatsSource {
  #mounts: Promise<CgroupMounts> | undefined;
  readonly #opts: CgroupStatsReaderOptions;

  constructor(opts: CgroupStatsReaderOptions = {}) {
    this.#opts = opts;
    if (opts.mounts) this.#mounts = Promise.resolve(opts.mounts);
  }

  mounts(): Promise<CgroupMounts> {
    this.#mounts ??= loadCgroupMounts(this.#opts.mountinfoPath);
    return this.#mounts;
  }

  async mode(): Promise<CgroupMode> {
    return cgroupMode(await this.mounts());
  }

  async dirs(cgroupsPath: string): Promise<CgroupDirs> {
    const m = await this.mounts();
    const out: CgroupDirs = { mode: cgroupMode(m) };
    for (const c of ["cpu", "cpuacct", "memory", "pids", "hugetlb"] as const) {
      const mount = m.v1[c];
      if (mount) out[c] = cgroupDir(mount, cgroupsPath);
    }
    if (m.unified) out.unified = cgroupDir(m.unified, cgroupsPath);
    return out;
  }

  /** Stats of the cgroup at cgroupsPath (cgroupfs driver form, e.g. "/kubepods/pod1/abc"). */
  async read(cgroupsPath: string): Promise<CgroupStats> {
    const d = await this.dirs(cgroupsPath);
    const ts = (this.#opts.now ?? epochNanos)();
    if (d.mode === "v2") {
      const dir = d.unified!;
      if (!(await isDir(dir))) throw notFound(`cgroup ${cgroupsPath} not found at ${dir}`);
      const [cpu, memory, pids, hugetlb, psi] = await Promise.all([
        readCpuV2(dir, ts), readMemoryV2(dir, ts), readPids(dir, ts), readHugetlbV2(dir), readPressure(dir),
      ]);
      return withPsi(compact({ version: 2, cpu, memory, pids, hugetlb }), psi, ts);
    }
    const primary = [d.cpuacct, d.memory, d.pids].filter((x) => x !== undefined);
    const present = await Promise.all(primary.map(isDir));
    if (!present.some(Boolean)) throw notFound(`cgroup ${cgroupsPath} not found under ${primary.join(", ") || "any v1 controller"}`);
    const hugetlb = d.hugetlb ? readHugetlbV1(d.hugetlb) : d.unified ? readHugetlbV2(d.unified) : Promise.resolve([]);
    const [cpu, memory, pids, huge, psi] = await Promise.all([
      d.cpuacct ? readCpuV1(d.cpuacct, d.cpu, ts) : undefined,
      d.memory ? readMemoryV1(d.memory, ts) : undefined,
      d.pids ? readPids(d.pids, ts) : undefined,
      hugetlb,
      // hybrid: runc also creates the cgroup in the unified tree, which carries the pressure files
      d.unified ? readPressure(d.unified) : undefined,
    ]);
    return withPsi(compact({ version: 1, cpu, memory, pids, hugetlb: huge }), psi, ts);
  }
}

function withPsi(s: CgroupStats, psi: CgroupStats["psi"], ts: bigint): CgroupStats {
  if (psi) {
    s.psi = psi;
    s.psiTimestamp = ts;
  }
  return s;
}

function compact(s: { version: 1 | 2; cpu: CgroupStats["cpu"]; memory: CgroupStats["memory"]; pids: CgroupStats["pids"]; hugetlb: CgroupStats["hugetlb"] }): CgroupStats {
  const out: CgroupStats = { version: s.version, hugetlb: s.hugetlb };
  if (s.cpu) out.cpu = s.cpu;
  if (s.memory) out.memory = s.memory;
  if (s.pids) out.pids = s.pids;
  return out;
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}
