// StopPodSandbox: stops the pod's containers, then releases its infra process, network,
// namespaces and /dev/shm (teardown.ts); the pod stays, not ready.
import { runTeardown } from "../../create-cache.ts";
import type { SandboxDeps } from "../deps.ts";
import { canStopSandbox, nextSandboxState } from "../state.ts";
import { releaseSteps } from "./teardown.ts";

/** Idempotent; an unknown id succeeds (CRI: "must not return an error if already stopped or missing"). */
export async function stopSandbox(d: SandboxDeps, id: string): Promise<void> {
  const found = d.store.resolve(id);
  if (!found) return;
  await d.store.withLock(found.id, async () => {
    const rec = d.store.tryGet(found.id);
    if (!rec || !canStopSandbox(rec.state)) return; // removed meanwhile: stopped is what the caller wanted
    await d.containers.stopAll(rec.id);
    await runTeardown(releaseSteps(d, rec), "strict", d.log);
    await d.store.update(rec.id, (r) => { r.state = nextSandboxState(r.state, "stopped") ?? r.state; });
  });
}
