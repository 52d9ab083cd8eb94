// The one teardown of a pod sandbox, shared by the rollback of RunPodSandbox, StopPodSandbox,
// RemovePodSandbox and the recovery of a create a crash interrupted. Every step is idempotent
// and acts only on what the record names, so it is safe on a half-made pod.
import { runTeardown, type TeardownStep } from "../../create-cache.ts";
import type { SandboxRecord } from "../sandbox-record.ts";
import { pinPathsOf, type SandboxDeps } from "../deps.ts";

type Deps = Pick<SandboxDeps, "os" | "network" | "infra" | "store" | "log">;

/** What a stopped pod gives back: its infra process (or ipc/uts pins), network, netns, /dev/shm and user namespace. */
export function releaseSteps(d: Deps, rec: SandboxRecord): TeardownStep[] {
  return [
    ["infra process", () => rec.pins ? undefined : d.infra.stop(rec)],
    ["ipc/uts pins", () => rec.pins ? d.os.unpinNamespaces(pinPathsOf(rec)) : undefined],
    ["cni", () => rec.netnsPath ? d.network.tearDown(rec.id, rec.netnsPath) : undefined],
    ["netns", () => rec.netnsPath ? d.os.removeNetns(rec.netnsPath) : undefined],
    ["shm", () => rec.shmPath ? d.os.unmountShm(rec.shmPath) : undefined],
    ["user namespace", () => rec.userns ? d.os.removeUserns(rec.id) : undefined],
  ];
}

/** Everything: the release steps, then the runtime state, the user namespace pins, the pod directory and the record. */
export function teardownSteps(d: Deps, rec: SandboxRecord): TeardownStep[] {
  return [
    ...releaseSteps(d, rec),
    // A create can die before its record names the user namespace: unpin by id.
    ["user namespace pins", () => d.os.removeUserns(rec.id)],
    ["infra state", () => rec.pins ? undefined : d.infra.remove(rec)],
    ["pod directory", () => d.os.removeAll(rec.podDir)],
    ["record", () => d.store.delete(rec.id)],
  ];
}

/** Tears a sandbox down completely. "strict" stops at the first failure (the record stays for a retry). */
export async function teardownSandbox(d: Deps, rec: SandboxRecord, mode: "strict" | "best-effort"): Promise<void> {
  await runTeardown(teardownSteps(d, rec), mode, d.log.child({ sandbox: rec.id }));
}
