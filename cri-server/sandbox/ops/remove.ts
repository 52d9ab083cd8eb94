// RemovePodSandbox: stops the pod, removes its containers, then the one teardown.
import type { SandboxDeps } from "../deps.ts";
import { stopSandbox } from "./stop.ts";
import { teardownSandbox } from "./teardown.ts";

/** Stops first, removes the pod's containers and all its state; an unknown id succeeds (CRI). */
export async function removeSandbox(d: SandboxDeps, id: string): Promise<void> {
  const found = d.store.resolve(id);
  if (!found) return;
  await stopSandbox(d, found.id);
  await d.store.withLock(found.id, async () => {
    const rec = d.store.tryGet(found.id);
    if (!rec) return;
    await d.containers.removeAll(rec.id);
    await teardownSandbox(d, rec, "strict");
    d.creates.forget(rec.name);
  });
}
