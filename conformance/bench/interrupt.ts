// Set on SIGINT/SIGTERM: running benchmarks stop at their next loop step, the rest are skipped,
// and every cleanup still runs in order.
export const interrupt = { requested: false };

export class InterruptedError extends Error {
  constructor() { super("interrupted"); this.name = "InterruptedError"; }
}
