// StartContainer: only a CREATED container in a ready pod starts; a runtime error records the
// container exited (StartError) and keeps the runtime's own message.
import { PodSandboxState } from "../../../proto/gen/runtime/v1/api_pb.js";
import { failedPrecondition } from "../../../oci-runtime/foundation/errdefs.ts";
import { ContainerEventType } from "../../events/index.ts";
import type { ContainerDeps } from "../deps.ts";
import { canStart, nextContainerState, startRefusal } from "../state.ts";
import { refreshContainer } from "./exit.ts";
import { join } from "node:path";
import { specHasPoststartHooks } from "../../../oci-runtime/bundle-spec/bundle.ts";

export async function startContainer(d: ContainerDeps, id: string): Promise<void> {
  const found = d.store.get(id, "container_id");
  await d.store.withLock(found.id, async () => {
    const cur = d.store.get(found.id, "container_id");
    if (!canStart(cur.state)) throw failedPrecondition(startRefusal(cur.id, cur.state));
    const sandbox = d.sandboxes.store.tryGet(cur.sandboxId);
    if (!sandbox || (await d.sandboxes.liveState(sandbox)) !== PodSandboxState.SANDBOX_READY) {
      throw failedPrecondition(`pod sandbox ${cur.sandboxId} of container ${cur.id} is not ready`);
    }
    // The process may run (and exit, as conmon records) before runc start returns.
    const startedAt = d.os.now().toString();
    try {
      const spec = await d.os.readFile(join(cur.bundle, "config.json")).catch(() => "");
      await d.runtimes.get(cur.runtimeHandler).start(cur.id, { poststartHooks: specHasPoststartHooks(spec), initPid: cur.pid });
    } catch (err) {
      await d.store.update(cur.id, (r) => {
        r.state = nextContainerState(r.state, "startFailed") ?? r.state;
        r.exitCode = 128; r.reason = "StartError"; r.message = (err as Error).message; r.finishedAt = d.os.now().toString();
      });
      throw err;
    }
    await d.store.update(cur.id, (r) => { r.state = nextContainerState(r.state, "started") ?? r.state; r.startedAt = startedAt; });
  });
  d.events.publish(d.store.get(found.id, "container_id"), ContainerEventType.CONTAINER_STARTED_EVENT);
  // A process that exits at once may have done so before we recorded "running".
  await refreshContainer(d, found.id);
}
