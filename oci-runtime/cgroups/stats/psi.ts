// Pressure stall information of a cgroup: the v2 files cpu.pressure, memory.pressure and
// io.pressure ("some avg10=0.00 avg60=0.00 avg300=0.00 total=123", and a "full" line).
// On a hybrid host they live in the unified tree, where runc creates the container's cgroup
// too. A file that is not there (no PSI, no unified tree) gives nothing, never zeros.
import { join } from "node:path";
import { readOptional } from "./read-file.ts";
import type { PsiData, PsiStats, PressureStats } from "./types.ts";

const LINE_RE = /^(some|full) avg10=(\d+(?:\.\d+)?) avg60=(\d+(?:\.\d+)?) avg300=(\d+(?:\.\d+)?) total=(\d{1,20})$/;

/** Parses one pressure file; undefined when it has no well-formed line. */
export function parsePressure(text: string): PsiStats | undefined {
  const out: PsiStats = {};
  for (const line of text.split("\n").slice(0, 4)) {
    const m = LINE_RE.exec(line.trim());
    if (!m) continue;
    const d: PsiData = { total: BigInt(m[5]!), avg10: Number(m[2]), avg60: Number(m[3]), avg300: Number(m[4]) };
    if (m[1] === "some") out.some = d;
    else out.full = d;
  }
  return out.some || out.full ? out : undefined;
}

/** PSI of the v2 cgroup directory `dir`, each resource only where its file exists and parses. */
export async function readPressure(dir: string): Promise<PressureStats | undefined> {
  const [cpu, memory, io] = await Promise.all(["cpu", "memory", "io"].map(async (r) => {
    const text = await readOptional(join(dir, `${r}.pressure`));
    return text === undefined ? undefined : parsePressure(text.slice(0, 4096));
  }));
  const out: PressureStats = {};
  if (cpu) out.cpu = cpu;
  if (memory) out.memory = memory;
  if (io) out.io = io;
  return out.cpu || out.memory || out.io ? out : undefined;
}
