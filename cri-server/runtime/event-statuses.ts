// The pod and container statuses attached to container events (evented PLEG).
import type { ContainerRecord } from "../container/container-record.ts";
import { isVisible } from "../container/state.ts";
import type { Sandboxes } from "../sandbox/deps.ts";
import type { Store } from "../stores/store.ts";
import { toContainerStatus } from "./container-view.ts";
import { toPodSandboxStatus } from "./sandbox-view.ts";

/** Built from the two record stores only, so the container operations can publish before any RPC context exists. */
export function eventStatuses(sandboxes: Pick<Sandboxes, "store" | "criState">, containers: Pick<Store<ContainerRecord>, "list" | "tryGet">, rec: ContainerRecord): { podSandboxStatus?: unknown; containersStatuses?: unknown[] } {
  const sb = sandboxes.store.tryGet(rec.sandboxId);
  const containersStatuses = containers.list().filter((c) => isVisible(c.state) && c.sandboxId === rec.sandboxId).map((c) => toContainerStatus(c));
  if (!containers.tryGet(rec.id)) containersStatuses.push(toContainerStatus(rec));
  if (!sb) return { containersStatuses };
  return { podSandboxStatus: toPodSandboxStatus(sb, sandboxes.criState(sb)), containersStatuses };
}
