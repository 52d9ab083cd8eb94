// OpenTelemetry tracing. Off by default: nothing from OpenTelemetry is loaded (not even
// the API) and every span is a shared no-op. With `[tracing] endpoint` set, the API and
// the Node SDK are imported on demand and spans are exported over OTLP/HTTP (JSON) to
// <endpoint>/v1/traces. Handlers get one span per RPC from instrument.ts (startSpan);
// libraries add child spans with withSpan().

import type { Attributes } from "@opentelemetry/api";
import { type Logger, log as rootLog } from "../oci-runtime/foundation/log.ts";

/** The part of an OpenTelemetry span berth uses. */
export interface SpanLike {
  recordException(err: Error): void;
  setStatus(status: { code: number; message?: string }): void;
  setAttribute(key: string, value: string | number | boolean): void;
  end(): void;
  /** False for the no-op span (tracing off). */
  isRecording(): boolean;
}

/** OpenTelemetry's SpanStatusCode.ERROR (a protocol constant: UNSET 0, OK 1, ERROR 2). */
export const SPAN_STATUS_ERROR = 2;

const NOOP_SPAN: SpanLike = { recordException() {}, setStatus() {}, setAttribute() {}, end() {}, isRecording: () => false };

export interface TracingOptions {
  /** OTLP/HTTP collector, e.g. "http://127.0.0.1:4318" (scheme optional, /v1/traces added); "" = off. */
  endpoint: string;
  serviceName?: string;
  /** Extra HTTP headers sent with every export (e.g. authorization). */
  headers?: Record<string, string>;
  log?: Logger;
}

interface Running {
  shutdown(): Promise<void>;
  forceFlush(): Promise<void>;
}

let running: Running | undefined;
/** The OpenTelemetry API, loaded by startTracing. */
let otel: typeof import("@opentelemetry/api") | undefined;

/** The URL spans are POSTed to for an endpoint setting. */
export function tracesUrl(endpoint: string): string {
  let url = /^[a-z][a-z0-9+.-]*:\/\//i.test(endpoint) ? endpoint : `http://${endpoint}`;
  url = url.replace(/\/+$/, "");
  return url.endsWith("/v1/traces") ? url : `${url}/v1/traces`;
}

/** Starts exporting spans; resolves false (and loads nothing) when the endpoint is empty. */
export async function startTracing(opts: TracingOptions): Promise<boolean> {
  if (!opts.endpoint) return false;
  if (running) return true;
  const url = tracesUrl(opts.endpoint);
  const [api, { NodeSDK, tracing }, { OTLPTraceExporter }] = await Promise.all([
    import("@opentelemetry/api"),
    import("@opentelemetry/sdk-node"),
    import("@opentelemetry/exporter-trace-otlp-http"),
  ]);
  const exporter = new OTLPTraceExporter({ url, ...(opts.headers ? { headers: opts.headers } : {}) });
  const processor = new tracing.BatchSpanProcessor(exporter);
  const sdk = new NodeSDK({
    serviceName: opts.serviceName ?? "berth",
    spanProcessors: [processor],
    instrumentations: [],
    resourceDetectors: [],
    metricReaders: [],
    logRecordProcessors: [],
  });
  sdk.start();
  otel = api;
  running = { shutdown: () => sdk.shutdown(), forceFlush: () => processor.forceFlush() };
  (opts.log ?? rootLog).info("tracing enabled", { endpoint: url, service: opts.serviceName ?? "berth" });
  return true;
}

export const tracingEnabled = (): boolean => running !== undefined;

/** Exports every finished span now (no-op when off). */
export async function flushTracing(): Promise<void> {
  await running?.forceFlush();
}

/** Flushes and stops the SDK (no-op when off). */
export async function shutdownTracing(): Promise<void> {
  const r = running;
  running = undefined;
  otel = undefined;
  await r?.shutdown();
}

/**
 * Runs fn inside a new active span (a child of the current one) and leaves ending and status
 * to fn; with tracing off fn gets a shared no-op span and nothing else happens.
 */
export function startSpan<T>(name: string, attributes: Attributes, fn: (span: SpanLike) => Promise<T>): Promise<T> {
  if (!otel) return fn(NOOP_SPAN);
  return otel.trace.getTracer("berth").startActiveSpan(name, { attributes }, fn);
}

/**
 * Runs fn inside a child span of the current span (image pull, CNI, runtime
 * call...). The span records a thrown error and ends when fn settles.
 */
export function withSpan<T>(name: string, attributes: Attributes, fn: (span: SpanLike) => Promise<T>): Promise<T> {
  if (!otel) return fn(NOOP_SPAN);
  return startSpan(name, attributes, async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      if (err instanceof Error) span.recordException(err);
      span.setStatus({ code: SPAN_STATUS_ERROR, message: err instanceof Error ? err.message : String(err) });
      throw err;
    } finally {
      span.end();
    }
  });
}
