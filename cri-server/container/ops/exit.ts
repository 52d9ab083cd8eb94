// Exit tracking: conmon writes an exit file; the watcher, status reads and stops record it once.
import type { ExitInfo } from "../../../oci-runtime/index.ts";
import { ContainerEventType } from "../../events/index.ts";
import type { ContainerRecord } from "../container-record.ts";
import type { ContainerDeps } from "../deps.ts";
import { canExit, mayHaveExited, nextContainerState } from "../state.ts";

type Deps = Pick<ContainerDeps, "store" | "monitor" | "events" | "log">;

/** Reads the exit file; marks the container exited when conmon recorded its exit. */
export async function refreshContainer(d: Deps, id: string): Promise<ContainerRecord> {
  const rec = d.store.get(id, "container_id");
  if (!mayHaveExited(rec.state)) return rec;
  const exit = await d.monitor.readExit(rec.id);
  if (!exit) return rec;
  return markExited(d, rec.id, exit);
}

/** Records an exit (code, time, OOM); two reporters of one exit change the record once. */
export async function markExited(d: Deps, id: string, exit: ExitInfo): Promise<ContainerRecord> {
  const cur = d.store.tryGet(id);
  if (!cur || !canExit(cur.state)) return cur ?? d.store.get(id, "container_id");
  const oom = await d.monitor.oomKilled(cur.bundle);
  let changed = false;
  const next = await d.store.update(id, (r) => {
    // Decided on the current record: two reporters of one exit (watcher, status refresh) change it once.
    const to = nextContainerState(r.state, "exited");
    if (!to) return;
    changed = true;
    r.state = to;
    r.exitCode = exit.exitCode;
    // created <= started <= finished even when clocks of berthd and conmon disagree slightly.
    const finished = exit.finishedAtNs > BigInt(r.startedAt) ? exit.finishedAtNs : BigInt(r.startedAt);
    r.finishedAt = (finished > BigInt(r.createdAt) ? finished : BigInt(r.createdAt)).toString();
    if (r.startedAt === "0") r.startedAt = r.finishedAt;
    r.reason = oom ? "OOMKilled" : exit.exitCode === 0 ? "Completed" : "Error";
  });
  if (!changed) return next;
  d.log.info("container exited", { container: id, exit_code: exit.exitCode, reason: next.reason });
  d.events.publish(next, ContainerEventType.CONTAINER_STOPPED_EVENT);
  return next;
}

/** The exit watcher's callback: records the exit under the container's lock. */
export function onExitFile(d: Deps, id: string, info: ExitInfo): void {
  if (!d.store.tryGet(id)) return;
  void d.store.withLock(id, async () => { if (d.store.tryGet(id)) await markExited(d, id, info); })
    .catch((err) => d.log.warn("exit handling failed", { container: id, error: err }));
}

/** An exit berth records itself (no exit file): killed, lost, or unknown. */
export const syntheticExit = (d: Pick<ContainerDeps, "os">, exitCode: number): ExitInfo =>
  ({ exitCode, finishedAt: new Date(Number(d.os.now() / 1_000_000n)), finishedAtNs: d.os.now() });
