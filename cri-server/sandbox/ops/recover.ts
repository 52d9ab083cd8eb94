// Sandbox recovery after a berthd restart: creates a crash interrupted are torn down, ready pods
// whose infra process died (or whose ipc/uts pins are gone) become not ready, and what no record
// knows (netns pins, CNI attachments, user namespace pins, pod directories and the pins in them) is swept.
import { basename, join } from "node:path";
import { podHeld, podPinPaths, type SandboxDeps } from "../deps.ts";
import { expectsInfra, nextSandboxState } from "../state.ts";
import { teardownSandbox } from "./teardown.ts";

export async function recoverSandboxes(d: SandboxDeps): Promise<void> {
  const recs = await d.store.load((file, err) => d.log.error("unreadable sandbox record", { file, error: err }));
  for (const rec of recs) {
    if (rec.state === "creating") {
      d.log.warn("cleaning up a sandbox whose create was interrupted", { sandbox: rec.id });
      try {
        await teardownSandbox(d, rec, "strict");
      } catch (err) {
        // Keep it visible (not ready) rather than hidden with its name reserved: kubelet then
        // removes it, which retries the cleanup.
        d.log.error("cleanup of an interrupted sandbox failed; reporting it not ready", { sandbox: rec.id, error: err });
        await d.store.update(rec.id, (r) => {
          r.state = nextSandboxState(r.state, "cleanupFailed") ?? r.state;
          r.reason = `create interrupted and cleanup failed: ${(err as Error).message}`;
        }).catch(() => {});
      }
      continue;
    }
    if (expectsInfra(rec.state) && !(await podHeld(rec, d.infra, d.os.pinsAlive))) {
      const reason = rec.pins ? "pinned ipc/uts namespaces were gone after berthd was down" : "infra process exited while berthd was down";
      d.log.warn(rec.pins ? "sandbox namespace pins are gone; marking not ready" : "sandbox infra process is gone; marking not ready", { sandbox: rec.id });
      await d.store.update(rec.id, (r) => { r.state = nextSandboxState(r.state, "infraDied") ?? r.state; r.reason = reason; });
    }
  }
  await sweepOrphans(d);
}

/**
 * Removes what a create interrupted before its record knew about it: pinned netns,
 * CNI attachments (with their IP leases) and pod directories of no known sandbox.
 */
async function sweepOrphans(d: SandboxDeps): Promise<void> {
  const known = new Set(d.store.list().map((r) => r.id));
  const knownNetns = new Set(d.store.list().flatMap((r) => [r.netnsPath ? basename(r.netnsPath) : "", r.id.slice(0, 32)]));
  for (const id of await d.network.listCached()) {
    if (known.has(id)) continue;
    d.log.warn("tearing down the network of an unknown sandbox", { sandbox: id });
    await d.network.tearDown(id).catch((err) => d.log.error("orphan cni teardown failed", { sandbox: id, error: err }));
  }
  for (const path of await d.os.listNetns().catch(() => [] as string[])) {
    if (knownNetns.has(basename(path))) continue;
    d.log.warn("removing an orphaned network namespace", { path });
    await d.os.removeNetns(path).catch((err) => d.log.error("orphan netns removal failed", { path, error: err }));
  }
  // User namespace pins (and the netns each owns) of no known sandbox.
  for (const id of await d.os.listUserns().catch(() => [] as string[])) {
    if (d.store.tryGet(id)) continue; // a known sandbox's stop or remove unpins them
    d.log.warn("removing the user namespace pins of an unknown sandbox", { sandbox: id });
    await d.os.removeUserns(id).catch((err) => d.log.error("user namespace pin removal failed", { sandbox: id, error: err }));
  }
  const root = join(d.config.state, "sandboxes");
  for (const dir of await d.os.readdir(root).catch(() => [] as string[])) {
    if (known.has(dir)) continue;
    const path = join(root, dir);
    d.log.warn("removing an orphaned pod directory", { dir: path });
    await d.os.unmountShm(join(path, "shm")).catch(() => {});
    await d.os.unpinNamespaces(podPinPaths(path)).catch((err) => d.log.error("orphan ipc/uts pin removal failed", { dir: path, error: err }));
    await d.os.removeAll(path).catch(() => {});
  }
}
