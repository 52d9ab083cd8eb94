// The pod and container statuses attached to container events (evented PLEG).
import type { Context } from "../context.ts";
import type { ContainerRecord } from "../container/container-record.ts";
import { nowNs } from "./filters.ts";
import { toContainerStatus } from "./container-view.ts";

export function eventStatuses(ctx: Context, rec: ContainerRecord): { podSandboxStatus?: unknown; containersStatuses?: unknown[] } {
  const sb = ctx.sandboxes.store.tryGet(rec.sandboxId);
  const containersStatuses = ctx.containers.list().filter((c) => c.sandboxId === rec.sandboxId).map((c) => toContainerStatus(ctx.containers, c));
  if (!ctx.containers.store.tryGet(rec.id)) containersStatuses.push(toContainerStatus(ctx.containers, rec));
  if (!sb) return { containersStatuses };
  const [ip, ...more] = sb.ips;
  return {
    podSandboxStatus: {
      id: sb.id,
      metadata: sb.metadata,
      state: ctx.sandboxes.criState(sb),
      createdAt: BigInt(sb.createdAt),
      network: { ip: ip ?? "", additionalIps: more.map((x) => ({ ip: x })) },
      linux: { namespaces: { options: { network: sb.namespaces.network, pid: sb.namespaces.pid, ipc: sb.namespaces.ipc, targetId: sb.namespaces.targetId } } },
      labels: sb.labels,
      annotations: sb.annotations,
      runtimeHandler: sb.runtimeHandler,
    },
    containersStatuses,
  };
}

export const eventTimestamp = nowNs;
