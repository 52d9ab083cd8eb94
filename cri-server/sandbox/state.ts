// The pod sandbox state machine.
//
//   creating --ready--> ready --stopped/infraDied--> notready --stopped--> notready
//   creating --failed--> (record deleted);  creating --cleanupFailed--> notready (after a crash)
//
// "creating" is never shown to CRI callers; remove is allowed in every state.
import { PodSandboxState } from "../../proto/gen/runtime/v1/api_pb.js";
import type { SandboxState } from "./sandbox-record.ts";

export type SandboxEventName = "ready" | "stopped" | "infraDied" | "cleanupFailed";

const TRANSITIONS: Record<SandboxState, Partial<Record<SandboxEventName, SandboxState>>> = {
  creating: { ready: "ready", cleanupFailed: "notready", stopped: "notready" },
  ready: { stopped: "notready", infraDied: "notready" },
  notready: { stopped: "notready" },
};

export function nextSandboxState(from: SandboxState, event: SandboxEventName): SandboxState | undefined {
  return TRANSITIONS[from]?.[event];
}

/** Stop is idempotent: allowed in every state. */
export const canStopSandbox = (s: SandboxState): boolean => nextSandboxState(s, "stopped") !== undefined;
/** Containers are created and started only in a ready pod. */
export const canRunContainers = (s: SandboxState): boolean => s === "ready";
/** Whether CRI callers see the sandbox. */
export const isSandboxVisible = (s: SandboxState): boolean => s !== "creating";
/** Whether the infra process should be alive (a dead one makes the pod not ready). */
export const expectsInfra = (s: SandboxState): boolean => s === "ready";

/** The CRI state of a recorded state (before the liveness of its infra process is checked). */
export const criSandboxState = (s: SandboxState): PodSandboxState =>
  s === "ready" ? PodSandboxState.SANDBOX_READY : PodSandboxState.SANDBOX_NOTREADY;
