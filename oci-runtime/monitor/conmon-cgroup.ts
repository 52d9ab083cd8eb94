// The cgroup each conmon runs in. conmon must not stay in berthd's cgroup: a service manager's
// stop (systemd's default KillMode=control-group) kills every process there, so every monitor
// would die with berthd, and the restarted berthd would find the containers orphaned.
//
// As CRI-O's conmon_cgroup: "pod" puts each conmon in `<pod cgroup parent>/berth-conmon-<id>`
// (accounted to the pod, removed with the container); any other setting is one cgroup shared by
// every conmon (e.g. "berth-conmon", outside the slices systemd manages), kept across containers.
//
// The move happens before conmon runs: berth-spawn's child writes its own pid into each
// hierarchy's cgroup.procs between fork and exec (conmon.ts, syncLineVia). Without berth-spawn,
// conmon is started through `/bin/sh` running a fixed script that does the same and only then
// execs conmon (same pid). The paths and conmon's arguments are positional parameters, never script text.
// If the move fails, conmon never starts and the create fails with the shell's message.
// There is no window in which conmon runs in berthd's cgroup: only the wrapper shell does, until
// its first write. A stop that lands in that window kills the shell before conmon exists; the
// create's record is then "incomplete" and the restarted berthd removes it. `runc create`, which
// conmon forks, starts in conmon's cgroup and the container's init moves into its own.
// What stays in berthd's cgroup, and dies with it: runc create/start/kill/delete calls, exec
// sessions, CNI plugins and the berth-io helpers of attach and port-forward streams.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { posix } from "node:path";
import { invalidArgument } from "../foundation/errdefs.ts";
import type { CgroupLayout } from "../cgroups/mode.ts";
import { cgroupDirs, cgroupPathUnder } from "../cgroups/paths.ts";

/** The script: $1 = number of cgroup.procs files, then the files, then the program and its arguments. */
export const JOIN_CGROUP_SCRIPT = [
  'n=$1; shift',
  'while [ "$n" -gt 0 ]; do',
  '  echo $$ > "$1" || { echo "berth: cannot move conmon (pid $$) into $1" >&2; exit 97; }',
  '  shift; n=$((n-1))',
  'done',
  'exec "$@"',
].join("\n");

const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.@-]*$/;

/** The cgroup path (from the hierarchy root) of the conmon of container `id`. */
export function conmonCgroupPath(setting: string, podCgroupParent: string, id: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(id)) throw invalidArgument(`invalid container id "${id}"`);
  if (setting === "pod") return cgroupPathUnder(podCgroupParent, `berth-conmon-${id}`);
  const parts = setting.split("/").filter((p, i) => !(i === 0 && p === ""));
  if (!parts.length || !parts.every((p) => NAME_RE.test(p))) throw invalidArgument(`runtime.conmon_cgroup ${JSON.stringify(setting)} is not a cgroup path`);
  return `/${parts.join("/")}`;
}

/** Whether conmon's cgroup belongs to one container (and is removed with it). */
export const conmonCgroupIsPerContainer = (setting: string) => setting === "pod";

/**
 * Creates `path` in every hierarchy (v1 controllers, named v1 hierarchies, the v2 tree) and returns
 * the cgroup.procs files to join. A new v1 cpuset cgroup starts with no cpus or mems: each new level
 * inherits its parent's.
 */
export async function prepareCgroup(layout: CgroupLayout, path: string): Promise<string[]> {
  const rel = posix.normalize(`/${path}`);
  // The hierarchies side by side (each its own directory tree): one after the other, the ten
  // mkdirs of a v1 layout took 1.5-2 ms of every CreateContainer.
  return Promise.all(cgroupDirs(layout, rel).map(async (dir) => {
    await mkdir(dir, { recursive: true, mode: 0o755 }); // cgroupfs: as every cgroup dir
    const h = layout.v1.find((x) => dir.startsWith(`${x.mountPoint}/`));
    if (h?.controllers.includes("cpuset")) {
      let cur = h.mountPoint;
      for (const part of rel.split("/").filter(Boolean)) {
        cur = posix.join(cur, part);
        for (const f of ["cpuset.cpus", "cpuset.mems"]) {
          const have = (await readFile(posix.join(cur, f), "utf8").catch(() => "")).trim();
          if (!have) await writeFile(posix.join(cur, f), (await readFile(posix.join(cur, "..", f), "utf8")).trim());
        }
      }
    }
    return posix.join(dir, "cgroup.procs");
  }));
}

/** The command that joins `procsFiles` and then execs `binary args...` (or runs it directly when there is nothing to join). */
export function joinCgroupCommand(procsFiles: string[], binary: string, args: string[]): { file: string; args: string[] } {
  if (!procsFiles.length) return { file: binary, args };
  return { file: "/bin/sh", args: ["-c", JOIN_CGROUP_SCRIPT, "berth-conmon", String(procsFiles.length), ...procsFiles, binary, ...args] };
}

/** The cgroup (path from the hierarchy root) `pid` is in, per hierarchy: "pids", "memory", "name=systemd", "" (v2). */
export async function cgroupsOf(pid: number): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const line of (await readFile(`/proc/${pid}/cgroup`, "utf8")).split("\n")) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    for (const c of m[1]!.split(",")) out.set(c, m[2]!);
  }
  return out;
}
