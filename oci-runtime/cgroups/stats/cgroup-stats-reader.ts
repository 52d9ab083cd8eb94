// Reads a container's (or pod's) cgroup statistics on cgroup v1, v2 and
// hybrid hosts. Mount points come from the one layout model (../mode.ts), read once.

import { stat } from "node:fs/promises";
import { notFound } from "../../foundation/errdefs.ts";
import { epochNanos } from "./clock.ts";
import { cgroupDirIn, detectCgroupLayout, hierarchyOf, readCgroupLayout, type CgroupLayout, type CgroupMode } from "../mode.ts";
import type { CgroupStats, CgroupStatsSource } from "./types.ts";
import { readCpuV1, readHugetlbV1, readMemoryV1, readPids } from "./v1.ts";
import { readCpuV2, readHugetlbV2, readMemoryV2 } from "./v2.ts";
import { readPressure } from "./psi.ts";

export interface CgroupStatsReaderOptions {
  /** The layout to use instead of the host's (tests point it at a temp dir). */
  layout?: CgroupLayout;
  /** mountinfo file to parse instead of the host's /proc/self/mountinfo. */
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
  #layout: Promise<CgroupLayout> | undefined;
  readonly #opts: CgroupStatsReaderOptions;

  constructor(opts: CgroupStatsReaderOptions = {}) {
    this.#opts = opts;
    if (opts.layout) this.#layout = Promise.resolve(opts.layout);
  }

  layout(): Promise<CgroupLayout> {
    this.#layout ??= this.#opts.mountinfoPath ? readCgroupLayout(this.#opts.mountinfoPath) : detectCgroupLayout();
    return this.#layout;
  }

  async mode(): Promise<CgroupMode> {
    return (await this.layout()).mode;
  }

  async dirs(cgroupsPath: string): Promise<CgroupDirs> {
    const l = await this.layout();
    const out: CgroupDirs = { mode: l.mode };
    for (const c of ["cpu", "cpuacct", "memory", "pids", "hugetlb"] as const) {
      const h = hierarchyOf(l, c);
      if (h) out[c] = cgroupDirIn(h.mountPoint, h.root, cgroupsPath);
    }
    if (l.v2) out.unified = cgroupDirIn(l.v2, l.v2Root ?? "/", cgroupsPath);
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
