// Nanoseconds since the Unix epoch, monotonic within the process (so deltas
// between samples never go negative when the wall clock is stepped).

const base = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();

export const epochNanos = (): bigint => base + process.hrtime.bigint();
