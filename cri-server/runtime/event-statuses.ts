// The pod and container statuses attached to container events (evented PLEG).
import type { Context } from "../context.ts";
import type { ContainerRecord } from "../container/container-record.ts";
import { toContainerStatus } from "./container-view.ts";
import { toPodSandboxStatus } from "./sandbox-view.ts";

export function eventStatuses(ctx: Context, rec: ContainerRecord): { podSandboxStatus?: unknown; containersStatuses?: unknown[] } {
  const sb = ctx.sandboxes.store.tryGet(rec.sandboxId);
  const containersStatuses = ctx.containers.list().filter((c) => c.sandboxId === rec.sandboxId).map((c) => toContainerStatus(ctx.containers, c));
  if (!ctx.containers.store.tryGet(rec.id)) containersStatuses.push(toContainerStatus(ctx.containers, rec));
  if (!sb) return { containersStatuses };
  return { podSandboxStatus: toPodSandboxStatus(sb, ctx.sandboxes.criState(sb)), containersStatuses };
}
