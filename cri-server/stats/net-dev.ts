// Per-interface network counters from /proc/<pid>/net/dev, which shows the
// network namespace of that process (the pod's infra process).

import { readFile } from "node:fs/promises";
import { notFound } from "../../oci-runtime/foundation/errdefs.ts";

export interface InterfaceCounters {
  name: string;
  rxBytes: bigint;
  rxPackets: bigint;
  rxErrors: bigint;
  rxDropped: bigint;
  txBytes: bigint;
  txPackets: bigint;
  txErrors: bigint;
  txDropped: bigint;
}

/** Parses /proc/net/dev text (two header lines, then "name: 16 counters"). */
export function parseNetDev(text: string): InterfaceCounters[] {
  const out: InterfaceCounters[] = [];
  for (const line of text.split("\n")) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    const f = line.slice(colon + 1).trim().split(/\s+/);
    if (!name || f.length < 16 || !f.every((x) => /^\d+$/.test(x))) continue;
    const n = (i: number) => BigInt(f[i]!);
    out.push({
      name,
      rxBytes: n(0), rxPackets: n(1), rxErrors: n(2), rxDropped: n(3),
      txBytes: n(8), txPackets: n(9), txErrors: n(10), txDropped: n(11),
    });
  }
  return out;
}

export async function readNetDev(pid: number, procRoot = "/proc"): Promise<InterfaceCounters[]> {
  const path = `${procRoot}/${pid}/net/dev`;
  try {
    return parseNetDev(await readFile(path, "utf8"));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT" || (err as NodeJS.ErrnoException).code === "ESRCH") {
      throw notFound(`process ${pid} not found reading ${path}`, err);
    }
    throw err;
  }
}
