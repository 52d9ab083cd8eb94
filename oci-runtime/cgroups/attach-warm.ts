// Moving a process between cgroups takes one kernel-wide lock (cgroup_threadgroup_rwsem, a percpu
// rwsem). Its write side waits for an RCU grace period when nobody has taken it for about a grace
// period; the writes that follow within that time are cheap. Measured on the development machine
// (kernel 6.18, no favordynmods): a first cgroup.procs write 4-16 ms (mostly 5-8), the next within
// 10 ms 0.01-0.05 ms, the next after 20 ms or more again 5-8 ms.
//
// Every CreateContainer pays that wait once (the monitor's cgroup join, and runc create's write of
// the container's init shortly after), as does every exec (runc exec puts the new process in the
// container's cgroups). warmCgroupAttach() starts the wait early, on the thread pool, while berthd
// does other work (the rootfs mount, the spec, the bundle): it writes berthd's own pid into the
// cgroup berthd is in, read from /proc/self/cgroup just before. That move changes nothing, but the
// lock is taken, and the runtime's writes a few ms later find it cheap. On a kernel with
// favordynmods (a cgroup2 mount option) the lock never waits and this is a cheap no-op.
import { constants, open, readFile } from "node:fs/promises";
import { posix } from "node:path";
import { detectCgroupLayout, type CgroupLayout } from "./mode.ts";

/**
 * The directory of a process's cgroup `path` (from /proc/PID/cgroup) in a hierarchy mounted at
 * `mountPoint` with cgroup `root` (from mountinfo), or undefined when it cannot be named exactly:
 * both are relative to the reader's cgroup namespace, so a mount of a cgroup above the namespace
 * (root "/../..", as with a bind-mounted host cgroupfs under cgroupns=private) or a path outside
 * the mounted cgroup has no directory there, and a guess could name another cgroup.
 */
function exactDir(mountPoint: string, root: string | undefined, path: string): string | undefined {
  const r = root && root !== "/" ? root.replace(/\/+$/, "") : "";
  const dotted = (p: string) => p.split("/").some((x) => x === ".." || x === ".");
  if (dotted(r) || dotted(path)) return undefined;
  if (r && path !== r && !path.startsWith(`${r}/`)) return undefined;
  const rel = path.slice(r.length).replace(/^\/+/, "");
  return rel ? posix.join(mountPoint, rel) : mountPoint;
}

/**
 * The cgroup.procs file of the cgroup a process is in, from its /proc/PID/cgroup text: in the v2
 * tree when there is one, else in the first v1 hierarchy it lists (cpuset last: a new cpuset
 * cgroup has no cpus). Undefined when no line fits, the cgroup was removed (" (deleted)") or it
 * cannot be named exactly (exactDir): the warm-up must never move the process anywhere else.
 */
export function ownProcsFile(layout: CgroupLayout, procCgroup: string): string | undefined {
  const lines = procCgroup.split("\n").map((l) => /^\d+:([^:]*):(\/.*)$/.exec(l)).filter((m) => !!m && !m[2]!.endsWith(" (deleted)"));
  if (layout.v2) {
    const v2 = lines.find((m) => m![1] === "");
    if (v2) {
      const dir = exactDir(layout.v2, layout.v2Root, v2[2]!);
      return dir ? posix.join(dir, "cgroup.procs") : undefined;
    }
  }
  const v1 = [...layout.v1].sort((a, b) => Number(a.controllers.includes("cpuset")) - Number(b.controllers.includes("cpuset")));
  for (const h of v1) {
    const m = lines.find((l) => l![1] !== "" && l![1]!.split(",").includes(h.controllers[0] ?? ""));
    if (m) {
      const dir = exactDir(h.mountPoint, h.root, m[2]!);
      return dir ? posix.join(dir, "cgroup.procs") : undefined;
    }
  }
  return undefined;
}

export interface AttachWarmerOptions {
  layout?: () => Promise<CgroupLayout>;
  /** The process moved into its own cgroup (berthd). */
  pid?: number;
  /** Told once, when the warm-up is given up after `MAX_FAILURES` failed writes in a row. */
  onGiveUp?: (err: Error) => void;
}

/** Failed writes in a row after which the warm-up is off (a cgroup berthd may not write to does not change). */
export const MAX_FAILURES = 3;

export class CgroupAttachWarmer {
  private inFlight: Promise<boolean> | undefined;
  private failures = 0;
  private readonly layout: () => Promise<CgroupLayout>;
  private readonly pid: number;
  /** Told once, when the warm-up is given up. */
  onGiveUp: ((err: Error) => void) | undefined;

  constructor(o: AttachWarmerOptions = {}) {
    this.onGiveUp = o.onGiveUp;
    this.layout = o.layout ?? detectCgroupLayout;
    this.pid = o.pid ?? process.pid;
  }

  /** Whether the warm-up was given up. */
  get off(): boolean { return this.failures >= MAX_FAILURES; }

  /**
   * Starts one write unless one is under way (it serves the caller as well) or the warm-up is off.
   * Never rejects: answers whether a write went through.
   */
  warm(): Promise<boolean> {
    if (this.off) return Promise.resolve(false);
    this.inFlight ??= this.write().finally(() => { this.inFlight = undefined; });
    return this.inFlight;
  }

  private async write(): Promise<boolean> {
    try {
      const file = ownProcsFile(await this.layout(), await readFile(`/proc/${this.pid}/cgroup`, "utf8"));
      if (!file) throw new Error(`no cgroup of process ${this.pid} in /proc/${this.pid}/cgroup that can be named exactly under the cgroup mounts`);
      const fh = await open(file, constants.O_WRONLY);
      try {
        await fh.write(String(this.pid));
      } finally {
        await fh.close();
      }
      this.failures = 0;
      return true;
    } catch (err) {
      if (++this.failures === MAX_FAILURES) this.onGiveUp?.(err as Error);
      return false;
    }
  }
}

let shared: CgroupAttachWarmer | undefined;

/** berthd's warmer; a caller passing `onGiveUp` (berthd's start-up) sets who is told. */
export function cgroupAttachWarmer(onGiveUp?: (err: Error) => void): CgroupAttachWarmer {
  shared ??= new CgroupAttachWarmer();
  if (onGiveUp) shared.onGiveUp = onGiveUp;
  return shared;
}

/** Starts berthd's warm-up write (fire and forget). */
export function warmCgroupAttach(): void {
  void cgroupAttachWarmer().warm();
}
