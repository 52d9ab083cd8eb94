// Operator metrics for Prometheus (prom-client): RPC count and latency by
// method and code, image pulls and bytes, containers by state, CNI and OCI
// runtime call latencies. One registry per instance (tests make their own).

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { codeName } from "../../oci-runtime/foundation/errdefs.ts";

/** Container count per state (e.g. { CONTAINER_RUNNING: 3, CONTAINER_EXITED: 1 }). */
export type ContainerStateCounts = Record<string, number>;

export interface BerthMetricsOptions {
  /** Also export Node.js process metrics (heap, event loop lag, fds...). Default true. */
  processMetrics?: boolean;
}

const LATENCY_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export class BerthMetrics {
  readonly registry = new Registry();
  readonly #grpcRequests: Counter<"method" | "code">;
  readonly #grpcDuration: Histogram<"method" | "code">;
  readonly #imagePulls: Counter<"result">;
  readonly #imagePullBytes: Counter;
  readonly #imageTrust: Counter<"result" | "reason">;
  readonly #cniDuration: Histogram<"op">;
  readonly #runtimeDuration: Histogram<"op" | "handler">;
  #containerStates: (() => ContainerStateCounts | Promise<ContainerStateCounts>) | undefined;

  constructor(opts: BerthMetricsOptions = {}) {
    const registers = [this.registry];
    this.#grpcRequests = new Counter({ name: "berth_grpc_requests_total", help: "CRI gRPC requests handled, by method and status code.", labelNames: ["method", "code"], registers });
    this.#grpcDuration = new Histogram({
      name: "berth_grpc_request_duration_seconds", help: "CRI gRPC request latency in seconds, by method and status code.",
      labelNames: ["method", "code"], buckets: LATENCY_BUCKETS, registers,
    });
    this.#imagePulls = new Counter({ name: "berth_image_pulls_total", help: "Image pulls, by result (success or failure).", labelNames: ["result"], registers });
    this.#imagePullBytes = new Counter({ name: "berth_image_pull_bytes_total", help: "Bytes downloaded from registries by image pulls.", registers });
    this.#imageTrust = new Counter({
      name: "berth_image_signature_checks_total",
      help: "Pulls checked against the signature policy, by result (verified, accepted without a signature requirement, refused) and refusal reason.",
      labelNames: ["result", "reason"], registers,
    });
    const self = this;
    new Gauge({
      name: "berth_containers", help: "Containers known to berth, by state.", labelNames: ["state"], registers,
      async collect() {
        if (!self.#containerStates) return;
        const counts = await self.#containerStates();
        this.reset();
        for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
      },
    });
    this.#cniDuration = new Histogram({
      name: "berth_cni_duration_seconds", help: "CNI plugin call latency in seconds, by operation (add, del, check, status).",
      labelNames: ["op"], buckets: LATENCY_BUCKETS, registers,
    });
    this.#runtimeDuration = new Histogram({
      name: "berth_runtime_duration_seconds", help: "OCI runtime call latency in seconds, by operation and runtime handler.",
      labelNames: ["op", "handler"], buckets: LATENCY_BUCKETS, registers,
    });
    if (opts.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: "berth_" });
  }

  /** One finished RPC; `code` is a gRPC status code number or name. Matches instrument.ts's RpcObserver. */
  observeRpc = (method: string, code: number | string, seconds: number): void => {
    const labels = { method, code: typeof code === "number" ? codeName(code) : code };
    this.#grpcRequests.inc(labels);
    this.#grpcDuration.observe(labels, seconds);
  };

  /** One finished image pull. */
  observeImagePull = (result: "success" | "failure", bytes = 0): void => {
    this.#imagePulls.inc({ result });
    if (bytes > 0) this.#imagePullBytes.inc(bytes);
  };

  /** Bytes received from a registry (call as they stream in, or once per pull). */
  addImagePullBytes = (bytes: number): void => {
    if (bytes > 0) this.#imagePullBytes.inc(bytes);
  };

  observeCni = (op: string, seconds: number): void => {
    this.#cniDuration.observe({ op }, seconds);
  };

  observeRuntime = (op: string, handler: string, seconds: number): void => {
    this.#runtimeDuration.observe({ op, handler }, seconds);
  };

  /** One pull checked against the signature policy; `reason` is set for refusals (no_signature, unknown_key, ...). */
  observeImageTrust = (result: "verified" | "accepted" | "refused", reason = ""): void => {
    this.#imageTrust.inc({ result, reason });
  };

  /** Registers the callback that counts containers by state at scrape time. */
  setContainerStates(fn: () => ContainerStateCounts | Promise<ContainerStateCounts>): void {
    this.#containerStates = fn;
  }

  /** The Prometheus text exposition of all metrics. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** Runs fn and reports its duration in seconds to observe (also when it throws). */
export async function timed<T>(observe: (seconds: number) => void, fn: () => Promise<T>): Promise<T> {
  const start = process.hrtime.bigint();
  try {
    return await fn();
  } finally {
    observe(Number(process.hrtime.bigint() - start) / 1e9);
  }
}
