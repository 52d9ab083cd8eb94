// Starts a container under its monitor (one per container) and talks to it through its files:
// pid files, exit files, the ctl fifo. The monitor runs `<runtime> create`, holds the container's
// stdio, writes the CRI log and the exit code, and outlives berthd (own session, stdio on /dev/null).
// The monitor is conmon or berth's own berth-monitor (helper/berth-monitor.c, config runtime.monitor,
// see monitorBinary): both take the same arguments and keep the same files, so "conmon" below
// means either.
import { spawn } from "node:child_process";
import { closeSync, constants as fsc, openSync } from "node:fs";
import { mkdir, open, readFile, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { deadlineExceeded, failedPrecondition, internal, invalidArgument } from "../foundation/errdefs.ts";
import { currentSpawner } from "../foundation/run-command.ts";
import type { SpawnedRun, Spawner } from "../foundation/spawner.ts";
import { runtimeError } from "../runtime/runtime-error.ts";
import { readPidFile, isConmonAlive } from "./pids.ts";
import { readExitFile, type ExitInfo } from "./exit-file.ts";
import { joinCgroupCommand, prepareCgroup } from "./conmon-cgroup.ts";
import type { CgroupLayout } from "../cgroups/mode.ts";

/** Files conmon and the runtime keep for one container, all inside its bundle dir. */
export interface ConmonFiles {
  conmonPidFile: string;
  containerPidFile: string;
  runtimeLog: string;
  ctlFifo: string;
  winszFifo: string;
  /** conmon's own stderr (its warnings and fatal errors). */
  conmonStderr: string;
}

export function conmonFiles(bundle: string): ConmonFiles {
  return {
    conmonPidFile: join(bundle, "conmon.pid"),
    containerPidFile: join(bundle, "container.pid"),
    runtimeLog: join(bundle, "runtime.log"),
    ctlFifo: join(bundle, "ctl"),
    winszFifo: join(bundle, "winsz"),
    conmonStderr: join(bundle, "conmon.stderr"),
  };
}

/** Path of conmon's attach socket for a container (conmon links `<socketDir>/<id>` to the bundle). */
export const attachSocketPath = (socketDir: string, id: string) => join(socketDir, id, "attach");

/** The part of an OciRuntime conmon needs to run `<binary> <globalArgs> create`. */
export interface RuntimeBinary {
  readonly binary: string;
  /** What the monitor runs for create, when not `binary` (a sealed copy: oci-runtime/runtime/sealed-binary.ts). */
  readonly execPath?: string;
  globalArgs(): string[];
}

export interface ConmonCreateOptions {
  runtime: RuntimeBinary;
  id: string;
  /** Container name for conmon's logs; default the id. */
  name?: string;
  bundle: string;
  /** CRI log file (k8s-file format). */
  logPath: string;
  /** Rotate-by-truncate limit in bytes (conmon `--log-size-max`); unset = unlimited. */
  logSizeMax?: number;
  exitDir: string;
  socketDir: string;
  /** conmon writes `exit` and `oom` files here. Default: the bundle. */
  persistDir?: string;
  stdin?: boolean;
  /** Close stdin after the first attach disconnects (CRI stdin_once); otherwise conmon leaves it open. */
  stdinOnce?: boolean;
  terminal?: boolean;
  conmonBinary?: string;
  /** How long to wait for conmon to report the container pid; default 60 s. */
  timeoutMs?: number;
  logLevel?: "error" | "warning" | "info" | "debug";
  noPivot?: boolean;
  /** Cgroup (path from the hierarchy root) conmon joins in every hierarchy before it starts; see conmon-cgroup.ts. */
  cgroup?: { layout: CgroupLayout; path: string };
}

/**
 * The monitor binary for config `runtime.monitor`: conmon (`runtime.conmon`), or berth's own
 * berth-monitor (same arguments and files), installed next to berth's io helper by hack/build-helpers.sh.
 */
export function monitorBinary(r: { monitor: "berth" | "conmon"; conmon: string; io_helper: string }): string {
  return r.monitor === "berth" ? join(dirname(r.io_helper), "berth-monitor") : r.conmon;
}

/** Builds conmon's argument list (pure; tested). */
export function conmonArgs(o: ConmonCreateOptions): string[] {
  const f = conmonFiles(o.bundle);
  const args = [
    "--api-version", "1",
    "--cid", o.id,
    "--cuuid", o.id,
    "--name", o.name ?? o.id,
    "--runtime", o.runtime.execPath ?? o.runtime.binary,
    "--bundle", o.bundle,
    "--container-pidfile", f.containerPidFile,
    "--conmon-pidfile", f.conmonPidFile,
    "--log-path", `k8s-file:${o.logPath}`,
    "--exit-dir", o.exitDir,
    "--socket-dir-path", o.socketDir,
    "--persist-dir", o.persistDir ?? o.bundle,
    "--log-level", o.logLevel ?? "error",
  ];
  if (o.logSizeMax !== undefined && o.logSizeMax > 0) args.push("--log-size-max", String(o.logSizeMax));
  if (o.stdin) args.push("--stdin");
  if (o.stdin && !o.stdinOnce) args.push("--leave-stdin-open");
  if (o.terminal) args.push("--terminal");
  if (o.noPivot) args.push("--no-pivot");
  for (const a of [...o.runtime.globalArgs(), "--log-format=json", `--log=${f.runtimeLog}`]) args.push("--runtime-arg", a);
  return args;
}

/** Parses conmon's sync-pipe message (`{"data": N, "message": "..."}`); tolerant of unescaped messages. */
export function parseSyncMessage(line: string): { data: number; message?: string } | undefined {
  try {
    const m = JSON.parse(line) as { data?: number; pid?: number; message?: string };
    const data = m.data ?? m.pid;
    if (typeof data === "number") return { data, message: m.message };
  } catch {
    const d = /"(?:data|pid)"\s*:\s*(-?\d+)/.exec(line);
    if (d) {
      const msg = /"message"\s*:\s*"([\s\S]*)"\s*}\s*$/.exec(line);
      return { data: Number(d[1]), message: msg?.[1] };
    }
  }
  return undefined;
}

export interface ConmonStarted {
  /** The container's init pid (created, not yet started). */
  pid: number;
  conmonPid: number;
}

/**
 * Starts conmon, which runs `<runtime> create`; resolves when the container exists (state "created").
 * The caller then calls runtime.start(id). On failure nothing is left running; the bundle is the caller's.
 */
export async function createContainer(o: ConmonCreateOptions): Promise<ConmonStarted> {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(o.id)) throw invalidArgument(`invalid container id "${o.id}"`);
  await Promise.all([
    mkdir(o.exitDir, { recursive: true, mode: 0o700 }), mkdir(o.socketDir, { recursive: true, mode: 0o700 }),
    // kubelet's log tree (or the bundle): 0755 as kubelet makes it
    mkdir(dirname(o.logPath), { recursive: true, mode: 0o755 }),
  ]);
  if (o.persistDir) await mkdir(o.persistDir, { recursive: true, mode: 0o700 });
  const f = conmonFiles(o.bundle);
  await Promise.all([rm(f.conmonPidFile, { force: true }), rm(f.containerPidFile, { force: true }), rm(f.runtimeLog, { force: true })]);

  // Out of berthd's cgroup before conmon runs, so a stop of berthd's service cgroup spares it.
  const procsFiles = o.cgroup ? await prepareCgroup(o.cgroup.layout, o.cgroup.path).catch((err: Error) => {
    throw internal(`cannot create the conmon cgroup ${o.cgroup!.path} for container ${o.id}: ${err.message}`, err);
  }) : [];
  const env = { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", _OCI_SYNCPIPE: "3" };
  const spawner = currentSpawner();
  const line = await (spawner ? syncLineVia(spawner, o, procsFiles, env, f.conmonStderr) : syncLineForked(o, procsFiles, env, f.conmonStderr)).catch(async (err: Error) => {
    await killConmon(o.bundle);
    if (err.message === "timeout") throw deadlineExceeded(`conmon did not report container ${o.id} within ${o.timeoutMs ?? 60_000} ms`);
    throw internal(`cannot start conmon for container ${o.id}: ${err.message}`, err);
  });

  const msg = parseSyncMessage(line);
  if (!msg || msg.data <= 0) {
    const detail = msg?.message?.trim() || (await readFile(f.runtimeLog, "utf8").catch(() => "")).trim()
      || lastLine(await readFile(f.conmonStderr, "utf8").catch(() => "")) || `conmon reported ${line.trim() || "nothing"}`;
    await killConmon(o.bundle);
    throw runtimeError(`create container ${o.id}`, detail);
  }
  const conmonPid = await readPidFile(f.conmonPidFile);
  if (!conmonPid) throw internal(`conmon for container ${o.id} wrote no pid file ${f.conmonPidFile}`);
  return { pid: msg.data, conmonPid };
}

/**
 * Starts the monitor through berth-spawn, which joins its cgroups before the exec (no shell) and
 * answers the first line of its sync pipe. "timeout" when none comes in time (the run is killed).
 */
function syncLineVia(spawner: Spawner, o: ConmonCreateOptions, procsFiles: string[], env: NodeJS.ProcessEnv, stderrFile: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let settled = false;
    const settle = (err: Error | undefined, line = "") => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err); else resolve(line);
    };
    let run: SpawnedRun | undefined;
    const timer = setTimeout(() => { run?.kill(); settle(new Error("timeout")); }, o.timeoutMs ?? 60_000);
    try {
      run = spawner.run({
        file: o.conmonBinary ?? "conmon", args: conmonArgs(o), env,
        // conmon writes some files (an "oom" marker among them) relative to its working directory.
        cwd: o.bundle, outputFile: stderrFile, cgroupProcs: procsFiles,
        onSyncLine: (line) => settle(undefined, line),
      }, (out) => settle(out.spawnError));
    } catch (e) {
      settle(e as Error); // a NUL byte in an argument (the CRI metadata name...): clears the timer
    }
  });
}

/** The same through a fork of berthd, with the cgroup joins done by a shell (joinCgroupCommand). */
async function syncLineForked(o: ConmonCreateOptions, procsFiles: string[], env: NodeJS.ProcessEnv, stderrFile: string): Promise<string> {
  const cmd = joinCgroupCommand(procsFiles, o.conmonBinary ?? "conmon", conmonArgs(o));
  const stderrFd = openSync(stderrFile, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_TRUNC | fsc.O_NOFOLLOW, 0o600);
  let child;
  try {
    child = spawn(cmd.file, cmd.args, {
      detached: true,
      cwd: o.bundle,
      stdio: ["ignore", "ignore", stderrFd, "pipe"],
      env,
    });
  } finally {
    closeSync(stderrFd);
  }
  child.unref();
  const sync = child.stdio[3] as NodeJS.ReadableStream & { destroy(): void; unref?: () => void };

  return new Promise<string>((resolve, reject) => {
    let buf = "";
    const timer = setTimeout(() => {
      // A monitor that never reported may have written no pid file: kill its process group (its
      // own, detached) while it still runs; a daemonized monitor has left it, and killConmon finds
      // it by its pid file. Not after its exit: its pid, the group's id, may be another's by then.
      if (child.exitCode === null && child.signalCode === null) {
        try { process.kill(-child.pid!, "SIGKILL"); } catch { /* gone */ }
      }
      done(new Error("timeout"));
    }, o.timeoutMs ?? 60_000);
    const done = (err: Error | undefined, value?: string) => {
      clearTimeout(timer);
      sync.removeAllListeners("data");
      sync.destroy();
      if (err) reject(err); else resolve(value!);
    };
    sync.on("data", (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf("\n");
      if (nl >= 0) done(undefined, buf.slice(0, nl));
    });
    sync.on("end", () => done(undefined, buf));
    sync.on("error", (e: Error) => done(e));
    child.once("error", (e) => done(e));
  });
}

const lastLine = (text: string) => text.trim().split("\n").filter(Boolean).pop()?.trim();

async function killConmon(bundle: string): Promise<void> {
  const pid = await readPidFile(conmonFiles(bundle).conmonPidFile);
  if (pid && (await isConmonAlive(pid))) {
    try { process.kill(pid, "SIGKILL"); } catch { /* already gone */ }
  }
}

/** Sends one control message ("<type> <height> <width>\n") to conmon's ctl fifo. */
async function writeCtl(bundle: string, id: string, type: 1 | 2, height = 0, width = 0): Promise<void> {
  const fifo = conmonFiles(bundle).ctlFifo;
  let fh;
  try {
    fh = await open(fifo, fsc.O_WRONLY | fsc.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENXIO" || code === "ENOENT") throw failedPrecondition(`container ${id} has no running monitor (${fifo})`, err);
    throw internal(`cannot open control fifo ${fifo} of container ${id}: ${(err as Error).message}`, err);
  }
  try {
    await fh.write(`${type} ${height} ${width}\n`);
  } finally {
    await fh.close();
  }
}

/** Asks conmon to reopen the container's log file (after kubelet rotated it). */
export async function reopenLog(bundle: string, id: string): Promise<void> {
  await writeCtl(bundle, id, 2);
}

/** Resizes the container's terminal (only meaningful with `terminal: true`). */
export async function resize(bundle: string, id: string, size: { height: number; width: number }): Promise<void> {
  const clamp = (n: number) => Math.max(0, Math.min(1000, Math.floor(n)));
  await writeCtl(bundle, id, 1, clamp(size.height), clamp(size.width));
}

export type Recovered =
  | { status: "exited"; exitCode: number; finishedAt: Date; finishedAtNs: bigint; oomKilled: boolean }
  | { status: "running"; pid: number; conmonPid: number }
  /** conmon is gone without an exit file: the container may run unmonitored; kill and delete it. */
  | { status: "lost"; pid?: number }
  /** conmon never reported a pid: a create that did not finish; clean it up. */
  | { status: "incomplete" };

/** Rebuilds a container's monitor state from disk after a berthd restart. */
export async function recover(o: { id: string; bundle: string; exitDir: string; persistDir?: string }): Promise<Recovered> {
  const exit = await readExitFile(o.exitDir, o.id);
  if (exit) return { status: "exited", ...exit, oomKilled: await wasOomKilled(o.persistDir ?? o.bundle) };
  const f = conmonFiles(o.bundle);
  const pid = await readPidFile(f.containerPidFile);
  const conmonPid = await readPidFile(f.conmonPidFile);
  if (!pid) return { status: "incomplete" };
  if (conmonPid && (await isConmonAlive(conmonPid))) {
    // conmon may have written the exit file between our two reads
    const late = await readExitFile(o.exitDir, o.id);
    if (late) return { status: "exited", ...late, oomKilled: await wasOomKilled(o.persistDir ?? o.bundle) };
    return { status: "running", pid, conmonPid };
  }
  return { status: "lost", pid };
}

/** conmon writes an `oom` file into the persist dir when the container was OOM-killed. */
export async function wasOomKilled(persistDir: string): Promise<boolean> {
  try {
    await readFile(join(persistDir, "oom"));
    return true;
  } catch {
    return false;
  }
}

export type { ExitInfo };
