// Container recovery after a berthd restart: half-created containers are torn down; running ones
// keep running and are reported with their pid; those that exited while berthd was down get
// their exit code and time from conmon's exit file; one that lost conmon is killed.
import { ContainerEventType } from "../../events/index.ts";
import type { ContainerRecord } from "../container-record.ts";
import type { ContainerDeps } from "../deps.ts";
import { canStart, nextContainerState } from "../state.ts";
import { markExited, syntheticExit } from "./exit.ts";
import { teardownContainer } from "./teardown.ts";

export async function recoverContainers(d: ContainerDeps): Promise<void> {
  const recs = await d.store.load((file, err) => d.log.error("unreadable container record", { file, error: err }));
  for (const rec of recs) {
    d.store.reserveName(rec.name, rec.id);
    try {
      await recoverOne(d, rec);
    } catch (err) {
      d.log.error("recovery of a container failed", { container: rec.id, error: err });
      // Never leave a hidden "creating" record holding its name: report it exited, so kubelet
      // removes it (which retries the cleanup).
      if (d.store.tryGet(rec.id)?.state === "creating") {
        await d.store.update(rec.id, (x) => {
          x.state = "exited"; x.exitCode = 255; x.reason = "Unknown";
          x.message = `create interrupted and cleanup failed: ${(err as Error).message}`;
          x.finishedAt = d.os.now().toString();
        }).catch(() => {});
      }
    }
  }
}

async function recoverOne(d: ContainerDeps, rec: ContainerRecord): Promise<void> {
  if (rec.state === "creating") {
    d.log.warn("cleaning up a container whose create was interrupted", { container: rec.id });
    await teardownContainer(d, rec, "strict");
    return;
  }
  if (rec.state === "exited") return;
  const rt = d.runtimes.get(rec.runtimeHandler);
  const r = await d.monitor.recover(rec);
  if (r.status === "exited") {
    await markExited(d, rec.id, r);
  } else if (r.status === "running") {
    if (r.pid !== rec.pid || r.conmonPid !== rec.conmonPid) await d.store.update(rec.id, (x) => { x.pid = r.pid; x.conmonPid = r.conmonPid; });
    // A crash between `runc start` and recording it leaves a running container recorded as created.
    if (canStart(rec.state) && (await rt.state(rec.id).catch(() => undefined))?.status === "running") {
      d.log.warn("container was started while berthd went down; recording it as running", { container: rec.id });
      const next = await d.store.update(rec.id, (x) => { x.state = nextContainerState(x.state, "started") ?? x.state; x.startedAt = d.os.now().toString(); });
      d.events.publish(next, ContainerEventType.CONTAINER_STARTED_EVENT);
    }
  } else if (r.status === "lost") {
    // conmon died without an exit file: nothing would log or reap this container any more.
    d.log.warn("container lost its monitor while berthd was down; killing it", { container: rec.id });
    await rt.kill(rec.id, "SIGKILL", true).catch(() => {});
    await markExited(d, rec.id, syntheticExit(d, 137));
    await d.store.update(rec.id, (x) => { x.reason = "Error"; x.message = "container monitor (conmon) exited while berthd was down"; });
  } else {
    const state = await rt.state(rec.id).catch(() => undefined);
    if (!state || state.status === "stopped") {
      await markExited(d, rec.id, syntheticExit(d, 255));
      await d.store.update(rec.id, (x) => { x.reason = "Unknown"; x.message = "container monitor lost while berthd was down"; });
    }
  }
}
