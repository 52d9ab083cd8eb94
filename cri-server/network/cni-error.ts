// CNI plugin error output ({cniVersion, code, msg, details} on stdout) to a
// BerthError whose message names the plugin, the command and the network.

import { BerthError, Code, deadlineExceeded, internal } from "../../oci-runtime/foundation/errdefs.ts";
import type { RunResult } from "../../oci-runtime/foundation/run-command.ts";
import { describeFailure, unfinishedError } from "../../oci-runtime/foundation/run-command.ts";

export interface CniErrorJson {
  code: number;
  msg: string;
  details?: string;
}

/** Well-known CNI error codes (spec section "Error"). */
export const CNI_ERROR_CODES: Record<number, string> = {
  1: "incompatible CNI version",
  2: "unsupported field in network configuration",
  3: "container unknown or does not exist",
  4: "invalid necessary environment variables",
  5: "I/O failure",
  6: "failed to decode content",
  7: "invalid network config",
  11: "try again later",
};

export function parseCniError(stdout: string): CniErrorJson | undefined {
  let v: unknown;
  try {
    v = JSON.parse(stdout);
  } catch {
    return undefined;
  }
  if (typeof v !== "object" || v === null) return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o.code !== "number" && typeof o.msg !== "string") return undefined;
  return {
    code: typeof o.code === "number" ? o.code : 0,
    msg: typeof o.msg === "string" ? o.msg : "",
    ...(typeof o.details === "string" && o.details ? { details: o.details } : {}),
  };
}

export interface PluginCallContext {
  plugin: string;
  command: string;
  network: string;
  sandboxId: string;
}

export const callName = (c: PluginCallContext) =>
  `cni plugin ${c.plugin} failed to ${c.command === "ADD" ? "add" : c.command === "DEL" ? "delete" : c.command.toLowerCase()} network "${c.network}" for sandbox ${c.sandboxId}`;

export function pluginError(c: PluginCallContext, r: RunResult, timeoutMs?: number): BerthError {
  if (r.aborted !== undefined) return unfinishedError(callName(c), c.plugin, r)!;
  if (r.timedOut) return deadlineExceeded(`${callName(c)}: timed out after ${timeoutMs} ms and was killed`);
  const e = parseCniError(r.stdout);
  if (e) {
    const code = e.code ? ` (code ${e.code}${CNI_ERROR_CODES[e.code] ? `: ${CNI_ERROR_CODES[e.code]}` : ""})` : "";
    const msg = [e.msg || "error", e.details].filter(Boolean).join(": ");
    return new BerthError(Code.INTERNAL, `${callName(c)}: ${msg}${code}`, { cause: e });
  }
  return internal(`${callName(c)}: ${describeFailure(r)}`);
}

/** DEL errors that only say the thing is already gone. */
export function isGoneError(err: unknown): boolean {
  const m = err instanceof Error ? err.message : String(err);
  return /not found|no such|does not exist|not exist|code 3\b/i.test(m);
}
