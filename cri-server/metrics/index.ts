// Default instance and the plain functions the daemon calls.
import { BerthMetrics, type ContainerStateCounts } from "./berth-metrics.ts";

export { BerthMetrics, timed, type BerthMetricsOptions, type ContainerStateCounts } from "./berth-metrics.ts";
export { instrumentImagePulls, instrumentNetwork, instrumentRuntime, wrapAsyncMethods } from "./instrument-calls.ts";
export { MetricsServer, parseHostPort, type MetricsServerOptions } from "./metrics-server.ts";

let instance: BerthMetrics | undefined;
/** The daemon-wide metrics, created on first use. */
export const berthMetrics = (): BerthMetrics => (instance ??= new BerthMetrics());

export const observeRpc = (method: string, code: number | string, seconds: number) => berthMetrics().observeRpc(method, code, seconds);
export const observeImagePull = (result: "success" | "failure", bytes = 0) => berthMetrics().observeImagePull(result, bytes);
export const addImagePullBytes = (bytes: number) => berthMetrics().addImagePullBytes(bytes);
export const observeCni = (op: string, seconds: number) => berthMetrics().observeCni(op, seconds);
export const observeRuntime = (op: string, handler: string, seconds: number) => berthMetrics().observeRuntime(op, handler, seconds);
export const setContainerStates = (fn: () => ContainerStateCounts | Promise<ContainerStateCounts>) => berthMetrics().setContainerStates(fn);
