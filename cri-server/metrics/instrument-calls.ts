// Child spans and latency metrics for the calls under an RPC: OCI runtime
// operations, CNI set-up/tear-down and image pulls. Each wraps the chosen
// async methods of one live object in place (the object keeps its type and
// identity), so the daemon instruments what it built without the libraries
// knowing about metrics or tracing.
import { withSpan } from "../tracing.ts";
import type { MetricsSink } from "./index.ts";
import { monotonicMs } from "../../oci-runtime/foundation/clock.ts";

type AsyncMethod = (...args: never[]) => Promise<unknown>;
type AsyncKeys<T> = { [K in keyof T]: T[K] extends AsyncMethod ? K : never }[keyof T] & string;

/**
 * Replaces each named method of `obj` with one that runs inside a span
 * `${prefix}.${method}` and reports its duration (also when it throws).
 */
export function wrapAsyncMethods<T extends object>(
  obj: T,
  methods: readonly AsyncKeys<T>[],
  prefix: string,
  observe: (method: string, seconds: number, ok: boolean, result: unknown) => void,
  attributes: Record<string, string> = {},
): T {
  for (const m of methods) {
    const original = obj[m] as unknown as (...args: unknown[]) => Promise<unknown>;
    if (typeof original !== "function") continue;
    const wrapped = function (this: unknown, ...args: unknown[]): Promise<unknown> {
      const start = monotonicMs();
      return withSpan(`${prefix}.${m}`, attributes, async () => {
        try {
          const result = await original.apply(obj, args);
          observe(m, (monotonicMs() - start) / 1000, true, result);
          return result;
        } catch (err) {
          observe(m, (monotonicMs() - start) / 1000, false, undefined);
          throw err;
        }
      });
    };
    Object.defineProperty(obj, m, { value: wrapped, configurable: true, writable: true });
  }
  return obj;
}

const RUNTIME_OPS = ["create", "start", "state", "kill", "delete", "exec", "update", "pause", "resume", "list"] as const;

/** OCI runtime calls: spans "runtime.<op>", berth_runtime_duration_seconds{op,handler}. */
export function instrumentRuntime<R extends { name: string } & Record<(typeof RUNTIME_OPS)[number], AsyncMethod>>(rt: R, metrics: MetricsSink): R {
  return wrapAsyncMethods(rt, RUNTIME_OPS as unknown as AsyncKeys<R>[], "runtime",
    (op, s) => metrics.observeRuntime(op, rt.name, s), { "berth.runtime_handler": rt.name });
}

/** CNI calls: spans "cni.setUp"/"cni.tearDown"/"cni.check", berth_cni_duration_seconds{op="add"|"del"|"check"}. */
export function instrumentNetwork<N extends { setUp: AsyncMethod; tearDown: AsyncMethod; check: AsyncMethod }>(net: N, metrics: MetricsSink): N {
  const op: Record<string, string> = { setUp: "add", tearDown: "del", check: "check" };
  return wrapAsyncMethods(net, ["setUp", "tearDown", "check"] as AsyncKeys<N>[], "cni", (m, s) => metrics.observeCni(op[m] ?? m, s));
}

/**
 * Image pulls: span "image.pull", berth_image_pulls_total{result} and the
 * pulled image's size in berth_image_pull_bytes_total (via `sizeOf`).
 */
export function instrumentImagePulls<I extends { pull: AsyncMethod }>(images: I, metrics: MetricsSink, sizeOf: (imageRef: string) => number | undefined): I {
  return wrapAsyncMethods(images, ["pull"] as AsyncKeys<I>[], "image", (_m, _s, ok, result) => {
    const ref = (result as { imageRef?: string } | undefined)?.imageRef;
    metrics.observeImagePull(ok ? "success" : "failure", ok && ref ? (sizeOf(ref) ?? 0) : 0);
  });
}
