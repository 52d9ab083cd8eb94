// Evaluation of a rule's conditions (capabilities, architecture, kernel version) for one container.

import { release } from "node:os";
import type { RuleCondition } from "./default-profile.ts";

export interface ConditionContext {
  /** Capability names with the CAP_ prefix: the container's bounding set. */
  capabilities: readonly string[];
  /** Short native architecture name ("amd64", "arm64", ...). */
  arch: string;
  /** Kernel release ("6.1.0-18-amd64"); defaults to os.release(). */
  kernel?: string;
}

/** Parses "major.minor[.patch][-extra]" into [major, minor]; undefined when it is not a version. */
export function parseKernelVersion(v: string): [number, number] | undefined {
  const m = /^(\d+)\.(\d+)/.exec(v.trim());
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

export function kernelAtLeast(running: string, min: string): boolean {
  const r = parseKernelVersion(running);
  const m = parseKernelVersion(min);
  if (!r || !m) return false;
  return r[0] > m[0] || (r[0] === m[0] && r[1] >= m[1]);
}

export function conditionHolds(when: RuleCondition | undefined, ctx: ConditionContext): boolean {
  if (!when) return true;
  const caps = new Set(ctx.capabilities);
  if (when.arches?.length && !when.arches.includes(ctx.arch)) return false;
  if (when.notArches?.length && when.notArches.includes(ctx.arch)) return false;
  if (when.caps?.length && !when.caps.every((c) => caps.has(c))) return false;
  if (when.withoutCaps?.length && when.withoutCaps.some((c) => caps.has(c))) return false;
  if (when.minKernel && !kernelAtLeast(ctx.kernel ?? release(), when.minKernel)) return false;
  return true;
}
