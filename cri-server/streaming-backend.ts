// The daemon's side of the streaming room's StreamTargets (streaming/backend.ts): the
// container and pod facts exec, attach and port-forward need, read from the context's lookups.
// The streaming room itself never imports the lifecycle code; this adapter is the one
// place that knows both.
import type { Context } from "./context.ts";
import { failedPrecondition } from "../oci-runtime/foundation/errdefs.ts";
import type { StreamTargets } from "./streaming/backend.ts";

/** The context is built after the streaming server (it holds it), hence the getter. */
export function streamTargets(context: () => Context): StreamTargets {
  return {
    ioHelper: () => context().config.runtime.io_helper,
    async runningContainer(id) {
      const containers = context().containers;
      const rec = await containers.refresh(containers.get(id).id);
      if (rec.state !== "running") throw failedPrecondition(`container ${rec.id} is not running (state ${rec.state})`);
      const rt = containers.runtimeOf(rec);
      return { id: rec.id, bundle: rec.bundle, runtime: { binary: rt.execPath, root: rt.root }, socketDir: containers.socketDir };
    },
    readyPod(id) {
      const sb = context().sandboxes.get(id);
      if (sb.state !== "ready") throw failedPrecondition(`pod sandbox ${sb.id} is not ready`);
      return { id: sb.id, ...(sb.netnsPath ? { netnsPath: sb.netnsPath } : {}) };
    },
  };
}
