// The one teardown of a container, shared by the rollback of CreateContainer, RemoveContainer and
// the recovery of a create a crash interrupted. Every step is idempotent and acts only on what the
// record names (or on paths derived from its id), so it is safe on a half-made container.
import { join } from "node:path";
import { runTeardown, type TeardownStep } from "../../create-cache.ts";
import { waitUntil } from "../../../oci-runtime/foundation/wait.ts";
import { forgetBundleProcess } from "../../../oci-runtime/runtime/exec-sync.ts";
import type { ContainerRecord } from "../container-record.ts";
import type { ContainerDeps } from "../deps.ts";
import { imageVolumeDirs } from "../image-volumes.ts";

/** How long a killed conmon gets to go (it could still write its exit file after we removed it). */
export const CONMON_EXIT_WAIT_MS = 1000;

type Deps = Pick<ContainerDeps, "config" | "log" | "store" | "exitDir" | "socketDir" | "os" | "runtimes" | "monitor" | "cgroups" | "mounts" | "images" | "exits">;

export function teardownSteps(d: Deps, rec: ContainerRecord): TeardownStep[] {
  const log = d.log.child({ container: rec.id });
  return [
    ["runtime state", () => d.runtimes.get(rec.runtimeHandler).delete(rec.id, { force: true }).catch((err) => log.warn("runtime delete failed", { error: err }))],
    ["conmon", async () => {
      // A create interrupted by a crash has no conmon pid in its record yet: take conmon's pid file.
      const pid = rec.conmonPid || (await d.monitor.pidOf(rec.bundle).catch(() => undefined));
      if (!pid || !(await d.monitor.alive(pid))) return;
      try { d.os.kill(pid, "SIGKILL"); } catch { /* gone */ }
      if (!(await waitUntil(async () => !(await d.monitor.alive(pid)), { timeoutMs: CONMON_EXIT_WAIT_MS, intervalMs: 10 }))) {
        log.warn("conmon still alive after SIGKILL", { conmon_pid: pid, waited_ms: CONMON_EXIT_WAIT_MS });
      }
    }],
    // berth's own mounts (a user-namespaced container's idmapped rootfs) go before the layers they use.
    ["prepared mounts", () => d.mounts.release(rec.id)],
    ["rootfs", () => d.images.removeRootfs(rec.id, rec.rootfs)],
    ["image volumes", () => d.images.removeImageVolumes(rec.id, imageVolumeDirs(d.config.state, rec.bundle, rec.id))],
    // removeUnder, not removeAll: an idmapped layer clone a crash left mounted there would make it EBUSY.
    ["image volume clones", () => d.mounts.releaseImageVolumes(rec.id)],
    ["bundle", async () => { forgetBundleProcess(rec.bundle); await d.os.removeAll(rec.bundle); }],
    ["exit file", () => d.os.removeAll(join(d.exitDir, rec.id))],
    ["attach socket", () => d.os.removeAll(join(d.socketDir, rec.id))],
    ["cgroup", () => rec.cgroupsPath ? d.cgroups.remove(rec.cgroupsPath).catch(() => {}) : undefined],
    ["conmon cgroup", async () => {
      const path = d.cgroups.perContainerConmonPath(rec.cgroupsPath, rec.id);
      if (!path) return;
      const left = await d.cgroups.remove(path).catch(() => [path]);
      if (left.length) log.warn("conmon cgroup left behind", { dirs: left });
    }],
    ["record", () => d.store.delete(rec.id)],
    ["exit watch", () => d.exits.forget(rec.id)],
  ];
}

/** Tears a container down completely. "strict" stops at the first failure (the record stays for a retry). */
export async function teardownContainer(d: Deps, rec: ContainerRecord, mode: "strict" | "best-effort"): Promise<void> {
  await runTeardown(teardownSteps(d, rec), mode, d.log.child({ container: rec.id }));
}
