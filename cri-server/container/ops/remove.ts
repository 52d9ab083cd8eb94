// RemoveContainer: kills a running container first, then the one teardown.
import { ContainerEventType } from "../../events/index.ts";
import type { ContainerDeps } from "../deps.ts";
import { stopContainer } from "./stop.ts";
import { teardownContainer } from "./teardown.ts";

/** Unknown ids succeed (CRI). */
export async function removeContainer(d: ContainerDeps, id: string): Promise<void> {
  const found = d.store.resolve(id);
  if (!found) return;
  await stopContainer(d, found.id, 0);
  await d.store.withLock(found.id, async () => {
    const rec = d.store.tryGet(found.id);
    if (!rec) return;
    await teardownContainer(d, rec, "strict");
    d.creates.forget(rec.name);
    d.events.publish(rec, ContainerEventType.CONTAINER_DELETED_EVENT);
  });
}

/** A pod's containers, for StopPodSandbox and RemovePodSandbox. */
export function podContainers(d: ContainerDeps): { stopAll(sandboxId: string): Promise<void>; removeAll(sandboxId: string): Promise<void> } {
  const of = (sandboxId: string) => d.store.list().filter((c) => c.sandboxId === sandboxId);
  return {
    stopAll: async (sandboxId) => { await Promise.all(of(sandboxId).map((c) => stopContainer(d, c.id, 0))); },
    removeAll: async (sandboxId) => { await Promise.all(of(sandboxId).map((c) => removeContainer(d, c.id))); },
  };
}
