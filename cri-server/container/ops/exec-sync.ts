// ExecSync: a command in a running container, bounded by the caller's timeout and the exec drain.
import { join } from "node:path";
import { execSync, type ExecSyncResult } from "../../../oci-runtime/index.ts";
import { failedPrecondition, invalidArgument } from "../../../oci-runtime/foundation/errdefs.ts";
import type { ContainerDeps } from "../deps.ts";
import { canExec } from "../state.ts";
import { refreshContainer } from "./exit.ts";

export async function execSyncInContainer(d: ContainerDeps, id: string, cmd: string[], timeoutSec: number, signal?: AbortSignal): Promise<ExecSyncResult> {
  const rec = await refreshContainer(d, d.store.get(id, "container_id").id);
  if (!canExec(rec.state)) throw failedPrecondition(`container ${rec.id} is not running (state ${rec.state})`);
  if (!cmd.length) throw invalidArgument("cmd must not be empty");
  return execSync(d.runtimes.get(rec.runtimeHandler), rec.id, cmd, {
    bundle: rec.bundle,
    workDir: join(rec.bundle, "exec"),
    ...(d.execReaper ? { reaper: d.execReaper } : {}),
    drainTimeoutMs: d.config.runtime.exec_drain_timeout * 1000,
    ...(timeoutSec > 0 ? { timeoutMs: timeoutSec * 1000 } : {}),
    ...(signal ? { signal } : {}),
  });
}
