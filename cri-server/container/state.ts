// The container state machine: which lifecycle operation each state allows, and the transitions.
//
//   creating --created--> created --started--> running --exited--> exited
//   creating --failed---> (record deleted)     created --exited/startFailed--> exited
//
// "creating" is never shown to CRI callers; a record left in it by a crash is torn down at start.
import type { ContainerStateName } from "./container-record.ts";

export type ContainerEventName = "created" | "started" | "startFailed" | "exited";

const TRANSITIONS: Record<ContainerStateName, Partial<Record<ContainerEventName, ContainerStateName>>> = {
  creating: { created: "created" },
  created: { started: "running", startFailed: "exited", exited: "exited" },
  running: { exited: "exited" },
  exited: {},
};

/** The state after `event`, or undefined when the event is not allowed in `from`. */
export function nextContainerState(from: ContainerStateName, event: ContainerEventName): ContainerStateName | undefined {
  return TRANSITIONS[from]?.[event];
}

/** Only a created container starts. */
export const canStart = (s: ContainerStateName): boolean => nextContainerState(s, "started") !== undefined;
/** Stop acts on a container that may have a process (created or running); others are already stopped. */
export const canStop = (s: ContainerStateName): boolean => s === "created" || s === "running";
/** An exit can be recorded for a container that has a process. */
export const canExit = (s: ContainerStateName): boolean => nextContainerState(s, "exited") !== undefined;
/** Whether the container's process runs (was started and has not exited). */
export const isRunning = (s: ContainerStateName): boolean => s === "running";
/** Exec, attach, log reopening: only a running process. */
export const canExec = (s: ContainerStateName): boolean => isRunning(s);
/** Resources can change until the container exited. */
export const canUpdateResources = (s: ContainerStateName): boolean => s !== "exited";
/** Whether CRI callers see the container (a create in progress is hidden). */
export const isVisible = (s: ContainerStateName): boolean => s !== "creating";
/** Whether a status read should look for an exit file. */
export const mayHaveExited = (s: ContainerStateName): boolean => s === "created" || s === "running";

/** Why an operation is refused, for FAILED_PRECONDITION messages. */
export function startRefusal(id: string, s: ContainerStateName): string {
  return `container ${id} is ${s === "running" ? "already running" : `in state ${s}`}; only a created container can be started`;
}
