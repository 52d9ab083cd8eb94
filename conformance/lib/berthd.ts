// Starts a real berthd (bin/berthd) with a fresh root, state and socket for a test.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { connect, type CriClient } from "./cri-client.ts";
import { unmountUnder } from "./mounts.ts";
import { exitWithin, hasExited } from "./procs.ts";

export { unmountUnder };

export const REPO = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const BERTHD = join(REPO, "bin", "berthd");

export interface BerthdOptions {
  /** Extra TOML appended to the generated config (root/state/socket are set already). */
  toml?: string;
  /** Keep the directories when stopping (for restart tests). */
  dir?: string;
  env?: Record<string, string>;
  /** Use this persistent root instead of <dir>/root. */
  root?: string;
  /** Cgroup directories (one per hierarchy, created by the caller) berthd runs in from its first instruction, as under a service manager. */
  cgroups?: string[];
}

/** Joins each cgroup (by writing its own pid to `<dir>/cgroup.procs`), then execs the rest of its arguments. */
const JOIN_CGROUPS = 'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1/cgroup.procs" || exit 97; shift; n=$((n-1)); done; exec "$@"';

export interface Berthd {
  readonly dir: string;
  readonly root: string;
  readonly state: string;
  readonly socket: string;
  readonly configPath: string;
  proc: ChildProcess;
  client: CriClient;
  /** Lines berthd wrote to stderr so far. */
  readonly stderr: string[];
  /** SIGTERM and wait. */
  stop(): Promise<number | null>;
  /** SIGKILL and wait (crash). */
  kill9(): Promise<void>;
  /** Start a new berthd on the same directories and config. */
  restart(): Promise<void>;
  /** Stop and delete everything. */
  cleanup(): Promise<void>;
}

/** How long stop() waits for berthd to exit after SIGTERM (its own grace is 10 s) before SIGKILL. */
const STOP_LIMIT_MS = 60_000;

/** Waits until this berthd process accepts connections on its socket (a stale socket file refuses them). */
async function waitForSocket(path: string, proc: ChildProcess, stderr: string[], _from: number, timeoutMs = 30_000): Promise<void> {
  const { connect } = await import("node:net");
  const start = Date.now();
  const accepts = () => new Promise<boolean>((resolve) => {
    const s = connect(path);
    s.once("connect", () => { s.destroy(); resolve(true); });
    s.once("error", () => resolve(false));
  });
  while (!existsSync(path) || !(await accepts())) {
    if (hasExited(proc)) throw new Error(`berthd exited with ${proc.exitCode ?? proc.signalCode}: ${stderr.join("")}`);
    if (Date.now() - start > timeoutMs) {
      proc.kill("SIGKILL");
      throw new Error(`berthd did not serve on ${path} within ${timeoutMs} ms: ${stderr.join("")}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * BERTH_TEST_MONITOR=berth|conmon runs every berthd of a suite with that runtime.monitor (the
 * config default otherwise), so one suite covers each monitor.
 */
export function withTestMonitor(toml: string, monitor = process.env.BERTH_TEST_MONITOR): string {
  if (!monitor) return toml;
  if (monitor !== "berth" && monitor !== "conmon") throw new Error(`BERTH_TEST_MONITOR must be "berth" or "conmon", got ${JSON.stringify(monitor)}`);
  if (/^\s*monitor\s*=/m.test(toml)) return toml; // the test picks its own
  const line = `monitor = "${monitor}"`;
  return /^\[runtime\][ \t]*$/m.test(toml) ? toml.replace(/^\[runtime\][ \t]*$/m, `[runtime]\n${line}`) : `${toml}\n[runtime]\n${line}\n`;
}

export async function startBerthd(opts: BerthdOptions = {}): Promise<Berthd> {
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), "berth-t-")));
  const root = opts.root ?? join(dir, "root");
  const state = join(dir, "state");
  const socket = join(state, "berth.sock");
  const configPath = join(dir, "berth.toml");
  await writeFile(configPath, `root = "${root}"\nstate = "${state}"\n${withTestMonitor(opts.toml ?? "")}\n`);
  const stderr: string[] = [];
  const launch = async () => {
    const from = stderr.length;
    const [file, args] = opts.cgroups?.length
      ? ["/bin/sh", ["-c", JOIN_CGROUPS, "berthd", String(opts.cgroups.length), ...opts.cgroups, BERTHD, "--config", configPath]]
      : [BERTHD, ["--config", configPath]];
    const proc = spawn(file, args, { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, ...opts.env } });
    proc.stderr!.setEncoding("utf8").on("data", (d: string) => stderr.push(d));
    await waitForSocket(socket, proc, stderr, from);
    return proc;
  };
  const b: Berthd = {
    dir, root, state, socket, configPath, stderr,
    proc: await launch(),
    client: connect(socket),
    async stop() {
      b.client.close();
      if (!hasExited(b.proc)) {
        b.proc.kill("SIGTERM");
        if (!(await exitWithin(b.proc, STOP_LIMIT_MS))) {
          b.proc.kill("SIGKILL");
          await exitWithin(b.proc, STOP_LIMIT_MS);
          throw new Error(`berthd (pid ${b.proc.pid}) did not exit within ${STOP_LIMIT_MS} ms of SIGTERM; killed. Its stderr ends: ${b.stderr.join("").slice(-2000)}`);
        }
      }
      return b.proc.exitCode;
    },
    async kill9() {
      b.client.close();
      if (!hasExited(b.proc)) { b.proc.kill("SIGKILL"); await exitWithin(b.proc, STOP_LIMIT_MS); }
    },
    async restart() {
      if (!hasExited(b.proc)) await b.stop();
      b.proc = await launch();
      b.client = connect(socket);
    },
    async cleanup() {
      await b.stop();
      unmountUnder(dir);
      await rm(dir, { recursive: true, force: true });
    },
  };
  return b;
}
