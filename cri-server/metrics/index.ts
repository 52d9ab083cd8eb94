// The daemon's metrics sink. With `[metrics] address` empty (the default) it is a no-op and
// neither prom-client nor the HTTP endpoint is loaded (prom-client alone costs about 20 MB of
// RSS); with an address, both are imported on demand and the endpoint is started.
import type { Logger } from "../../oci-runtime/foundation/log.ts";
import type { ContainerStateCounts } from "./berth-metrics.ts";

export type { BerthMetrics, BerthMetricsOptions, ContainerStateCounts } from "./berth-metrics.ts";
export type { MetricsServer, MetricsServerOptions } from "./metrics-server.ts";
export { instrumentImagePulls, instrumentNetwork, instrumentRuntime, wrapAsyncMethods } from "./instrument-calls.ts";

/** What the daemon reports to; BerthMetrics (prom-client) and NoopMetrics both fit. */
export interface MetricsSink {
  observeRpc(method: string, code: number | string, seconds: number): void;
  observeImagePull(result: "success" | "failure", bytes?: number): void;
  addImagePullBytes(bytes: number): void;
  observeCni(op: string, seconds: number): void;
  observeRuntime(op: string, handler: string, seconds: number): void;
  observeImageTrust(result: "verified" | "accepted" | "refused", reason?: string): void;
  setContainerStates(fn: () => ContainerStateCounts | Promise<ContainerStateCounts>): void;
}

/** Metrics off: every observation is dropped. */
export class NoopMetrics implements MetricsSink {
  observeRpc(): void {}
  observeImagePull(): void {}
  addImagePullBytes(): void {}
  observeCni(): void {}
  observeRuntime(): void {}
  observeImageTrust(): void {}
  setContainerStates(): void {}
}

export interface StartedMetrics {
  readonly metrics: MetricsSink;
  /** Whether prom-client was loaded and the endpoint serves. */
  readonly enabled: boolean;
  stop(): Promise<void>;
}

/**
 * The daemon's metrics: a no-op sink when `address` is empty (nothing more is loaded);
 * otherwise prom-client metrics served on GET /metrics at `address`.
 */
export async function startMetrics(opts: { address: string; log?: Logger }): Promise<StartedMetrics> {
  if (!opts.address) return { metrics: new NoopMetrics(), enabled: false, stop: async () => {} };
  const [{ BerthMetrics }, { MetricsServer }] = await Promise.all([import("./berth-metrics.ts"), import("./metrics-server.ts")]);
  const metrics = new BerthMetrics();
  const server = new MetricsServer({ address: opts.address, metrics, ...(opts.log ? { log: opts.log } : {}) });
  await server.start();
  return { metrics, enabled: true, stop: () => server.stop() };
}
