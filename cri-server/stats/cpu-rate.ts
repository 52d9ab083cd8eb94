// CPU usage rate between two cumulative samples, in nanocores
// (1e9 = one full core busy for the whole interval).

export interface CpuPoint {
  /** Epoch nanoseconds of the reading. */
  timestamp: bigint;
  /** Cumulative CPU time, nanoseconds. */
  usageCoreNanoSeconds: bigint;
}

/** undefined when there is no usable previous sample (first sample, clock or counter went back). */
export function nanoCores(prev: CpuPoint | undefined, cur: CpuPoint): bigint | undefined {
  if (!prev) return undefined;
  const dt = cur.timestamp - prev.timestamp;
  const du = cur.usageCoreNanoSeconds - prev.usageCoreNanoSeconds;
  if (dt <= 0n || du < 0n) return undefined;
  return (du * 1_000_000_000n) / dt;
}
