// StopContainer: the stop signal, then SIGKILL after the timeout (0 kills at once); the exit is
// recorded from conmon's exit file, or synthesised when conmon or the runtime lost the container.
import { deadlineExceeded } from "../../../oci-runtime/foundation/errdefs.ts";
import { waitFor } from "../../../oci-runtime/foundation/wait.ts";
import type { ExitInfo } from "../../../oci-runtime/index.ts";
import type { ContainerDeps } from "../deps.ts";
import { canStop, isRunning } from "../state.ts";
import { markExited, refreshContainer, syntheticExit } from "./exit.ts";

/** How long a SIGKILLed container gets to leave its exit file. */
export const KILL_WAIT_MS = 10_000;

/** Unknown ids succeed (CRI). `signal` aborts the waits (the RPC's deadline). */
export async function stopContainer(d: ContainerDeps, id: string, timeoutSec: number, signal?: AbortSignal): Promise<void> {
  const found = d.store.resolve(id);
  if (!found) return;
  await d.store.withLock(found.id, async () => {
    // A concurrent remove may have deleted it while we waited for the lock: done, as for an unknown id.
    if (!d.store.tryGet(found.id)) return;
    const rec = await refreshContainer(d, found.id);
    if (!canStop(rec.state)) return;
    const rt = d.runtimes.get(rec.runtimeHandler);
    const waitExit = (ms: number) => waitFor(() => d.monitor.readExit(rec.id), { timeoutMs: ms, intervalMs: 50, signal });
    let exit: ExitInfo | undefined;
    if (timeoutSec > 0 && isRunning(rec.state)) {
      await rt.kill(rec.id, rec.stopSignal || "SIGTERM").catch((err) => d.log.debug("stop signal failed", { container: rec.id, error: err }));
      exit = await waitExit(timeoutSec * 1000);
    }
    if (!exit) {
      await rt.kill(rec.id, "SIGKILL", true).catch((err) => d.log.debug("kill failed", { container: rec.id, error: err }));
      exit = await waitExit(KILL_WAIT_MS);
    }
    if (!exit) {
      // conmon is gone or the runtime lost the container: record what we know.
      const state = await rt.state(rec.id).catch(() => undefined);
      if (state && state.status !== "stopped") throw deadlineExceeded(`container ${rec.id} did not stop within ${KILL_WAIT_MS / 1000} s after SIGKILL`);
      exit = syntheticExit(d, 137);
    }
    await markExited(d, rec.id, exit);
  });
}
