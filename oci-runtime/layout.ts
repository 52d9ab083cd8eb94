// Where the OCI layer keeps runtime state under berth's `state` dir (all lost on reboot, rebuilt on start).
import { join } from "node:path";

export interface StateLayout {
  /** `<state>/containers/<id>`: config.json, rootfs/ (mount point), conmon.pid, container.pid, runtime.log,
   *  conmon.stderr, ctl and winsz fifos, attach socket, exit/oom files (persist dir), exec/ temp files. */
  bundle(id: string): string;
  /** `<state>/containers/<id>/rootfs`: where the image's overlay is mounted. */
  rootfs(id: string): string;
  /** `<state>/exits`: conmon writes `<exits>/<id>` with the exit code (mtime = finish time). */
  exitDir: string;
  /** `<state>/sockets`: conmon links `<sockets>/<id>` to the bundle; the attach socket is `<sockets>/<id>/attach`. */
  socketDir: string;
  /** `<state>/runtimes/<handler>`: the OCI runtime's --root for a handler. */
  runtimeRoot(handler: string): string;
  /** `<state>/infra/rootfs`: the catatonit rootfs shared by all pods (infra/ is 0700, rootfs/ 0755). */
  stateDir: string;
}

export function stateLayout(stateDir: string): StateLayout {
  return {
    bundle: (id) => join(stateDir, "containers", id),
    rootfs: (id) => join(stateDir, "containers", id, "rootfs"),
    exitDir: join(stateDir, "exits"),
    socketDir: join(stateDir, "sockets"),
    runtimeRoot: (handler) => join(stateDir, "runtimes", handler),
    stateDir,
  };
}
