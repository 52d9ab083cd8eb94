// ReopenContainerLog: conmon reopens the log (after kubelet rotated it); answered once the new file is there.
import { join } from "node:path";
import { deadlineExceeded, failedPrecondition } from "../../../oci-runtime/foundation/errdefs.ts";
import { waitFor } from "../../../oci-runtime/foundation/wait.ts";
import type { ContainerDeps } from "../deps.ts";
import { canExec } from "../state.ts";
import { refreshContainer } from "./exit.ts";

/** How long conmon gets to reopen the log. */
export const REOPEN_WAIT_MS = 10_000;

export async function reopenContainerLog(d: ContainerDeps, id: string, signal?: AbortSignal): Promise<void> {
  const rec = await refreshContainer(d, d.store.get(id, "container_id").id);
  if (!canExec(rec.state)) throw failedPrecondition(`container ${rec.id} is not running; cannot reopen its log`);
  // conmon reopens asynchronously by creating "<log>.tmp" and renaming it over the log path;
  // kubelet may compress the rotated file as soon as we answer, so wait for the new inode.
  const logPath = rec.logPath || join(rec.bundle, "container.log");
  const before = await d.os.inode(logPath);
  await d.monitor.reopenLog(rec.bundle, rec.id);
  const done = await waitFor(async () => {
    const now = await d.os.inode(logPath);
    if (now !== undefined && now !== before) return true;
    if (!(await d.monitor.alive(rec.conmonPid))) throw failedPrecondition(`container ${rec.id} has no running monitor; cannot reopen its log`);
    return undefined;
  }, { timeoutMs: REOPEN_WAIT_MS, intervalMs: 10, signal });
  if (!done) throw deadlineExceeded(`conmon did not reopen log ${logPath} of container ${rec.id} within ${REOPEN_WAIT_MS / 1000} s`);
}
