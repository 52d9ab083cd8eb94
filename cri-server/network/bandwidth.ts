// Pod bandwidth annotations -> the CNI "bandwidth" capability (rates in bits per second,
// bursts in bits, as the bandwidth plugin expects; kubelet's own limits of 1k..1P).
import { invalidArgument } from "../../oci-runtime/foundation/errdefs.ts";
import type { BandwidthCapability } from "./cni-invocation.ts";

export const INGRESS_BANDWIDTH = "kubernetes.io/ingress-bandwidth";
export const EGRESS_BANDWIDTH = "kubernetes.io/egress-bandwidth";
/** kubelet refuses less than 1 kbit/s and more than 1 Pbit/s. */
export const MIN_BANDWIDTH = 1_000;
export const MAX_BANDWIDTH = 1e15;
/** containerd passes this burst (bits) with every rate; so does berth. */
export const BANDWIDTH_BURST = 4294967295;

const SUFFIX: Record<string, number> = {
  "": 1, n: 1e-9, u: 1e-6, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};
const QUANTITY_RE = /^\+?((?:\d+(?:\.\d*)?|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d{1,3})?$/;

/** A Kubernetes quantity ("10M", "1.5Gi", "2e6", "500k") as a number, rounded up; undefined if malformed. */
export function parseQuantity(text: string): number | undefined {
  if (text.length > 64) return undefined;
  const m = QUANTITY_RE.exec(text.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const suffix = m[2] ?? "";
  const mult = /^[eE]/.test(suffix) ? 10 ** Number(suffix.slice(1)) : SUFFIX[suffix]!;
  const v = Math.ceil(n * mult);
  return Number.isFinite(v) ? v : undefined;
}

function rate(annotations: Record<string, string>, key: string): number | undefined {
  const raw = annotations[key];
  if (raw === undefined) return undefined;
  const v = parseQuantity(raw);
  const shown = JSON.stringify(raw.slice(0, 80));
  if (v === undefined) throw invalidArgument(`annotation ${key}: ${shown} is not a quantity (like "10M" or "1Gi")`);
  if (v < MIN_BANDWIDTH) throw invalidArgument(`annotation ${key}: ${shown} is less than the minimum of 1k (bits per second)`);
  if (v > MAX_BANDWIDTH) throw invalidArgument(`annotation ${key}: ${shown} is more than the maximum of 1P (bits per second)`);
  return v;
}

/** The bandwidth capability for a pod's annotations, or undefined when it sets none; INVALID_ARGUMENT names a bad one. */
export function podBandwidth(annotations: Record<string, string>): BandwidthCapability | undefined {
  const ingress = rate(annotations, INGRESS_BANDWIDTH);
  const egress = rate(annotations, EGRESS_BANDWIDTH);
  if (ingress === undefined && egress === undefined) return undefined;
  return {
    ...(ingress !== undefined ? { ingressRate: ingress, ingressBurst: BANDWIDTH_BURST } : {}),
    ...(egress !== undefined ? { egressRate: egress, egressBurst: BANDWIDTH_BURST } : {}),
  };
}
