// The event kubelet's evented PLEG receives from GetContainerEvents, as a
// plain object with the field names of runtime.v1.ContainerEventResponse.

import { epochNanos } from "../../oci-runtime/cgroups/stats/clock.ts";

/** Numeric values of runtime.v1.ContainerEventType. */
export const ContainerEventType = {
  CONTAINER_CREATED_EVENT: 0,
  CONTAINER_STARTED_EVENT: 1,
  CONTAINER_STOPPED_EVENT: 2,
  CONTAINER_DELETED_EVENT: 3,
} as const;
export type ContainerEventType = (typeof ContainerEventType)[keyof typeof ContainerEventType];

export interface ContainerEvent<PodStatus = unknown, ContainerStatus = unknown> {
  containerId: string;
  containerEventType: ContainerEventType;
  /** Epoch nanoseconds. */
  createdAt: bigint;
  /** Attached by the handler (runtime.v1.PodSandboxStatus). */
  podSandboxStatus?: PodStatus;
  /** Attached by the handler (runtime.v1.ContainerStatus of the pod's containers). */
  containersStatuses?: ContainerStatus[];
}

export function containerEvent<P = unknown, C = unknown>(
  containerId: string,
  containerEventType: ContainerEventType,
  extra: { createdAt?: bigint; podSandboxStatus?: P; containersStatuses?: C[] } = {},
): ContainerEvent<P, C> {
  const ev: ContainerEvent<P, C> = { containerId, containerEventType, createdAt: extra.createdAt ?? epochNanos() };
  if (extra.podSandboxStatus !== undefined) ev.podSandboxStatus = extra.podSandboxStatus;
  if (extra.containersStatuses !== undefined) ev.containersStatuses = extra.containersStatuses;
  return ev;
}
