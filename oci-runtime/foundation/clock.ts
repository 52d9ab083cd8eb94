// Time as berth records it.

/** Nanoseconds since the epoch, as the CRI's int64 timestamps. */
export const nowNs = (): bigint => BigInt(Date.now()) * 1_000_000n + (process.hrtime.bigint() % 1_000_000n);
