// OciRuntime for runc-compatible CLIs (runc, crun): every call is `<binary> --root <root> --log <file> --log-format json <cmd>`.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, readFile, rm, unlink, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { uniqueSuffix } from "../foundation/unique.ts";
import { internal, isNotFound } from "../foundation/errdefs.ts";
import type { LinuxResources } from "../bundle-spec/types.ts";
import { runCommand, unfinishedError } from "../foundation/run-command.ts";
import type { CallOptions, CreateOptions, ExecOptions, OciRuntime, OciState, RuntimeFeatures, StartOptions } from "./oci-runtime.ts";
import { runtimeError, runtimeMessage } from "./runtime-error.ts";

export interface RuncCliOptions {
  /** Handler name, e.g. "runc". */
  name: string;
  /** Path or name of the binary, e.g. "/usr/bin/runc". */
  binary: string;
  /** The runtime's state root (`--root`), one per handler. */
  root: string;
  /** Directory for per-call runtime logs (deleted after each call); default `<root>/../<basename>-logs`. */
  logDir?: string;
  /** Extra global args placed before the command (e.g. ["--systemd-cgroup"]). */
  extraGlobalArgs?: string[];
  /** Limit for create, start and update (default DEFAULT_RUNTIME_TIMEOUT_MS); state, kill, delete and the rest get at most QUICK_TIMEOUT_MS. */
  timeoutMs?: number;
  /**
   * berth-start (oci-runtime/runtime/helper/berth-start.c): when given and the binary is runc,
   * start reads runc's exec fifo through it instead of running `runc start`.
   */
  startHelper?: string;
}

/** runc create/start may wait on a loaded machine (cgroup setup, a slow disk); nothing should take this long. */
export const DEFAULT_RUNTIME_TIMEOUT_MS = 120_000;
/** state, kill, delete, pause, resume, list, features: quick calls. */
export const QUICK_TIMEOUT_MS = 30_000;

export class RuncCli implements OciRuntime {
  readonly name: string;
  readonly binary: string;
  readonly root: string;
  readonly #logDir: string;
  readonly #extra: string[];
  readonly timeoutMs: number;
  readonly quickTimeoutMs: number;
  #features: RuntimeFeatures | undefined;
  readonly #startHelper: string | undefined;
  #sealed: { readonly path: string | undefined } | undefined;

  constructor(opts: RuncCliOptions) {
    this.name = opts.name;
    this.binary = opts.binary;
    this.root = opts.root;
    this.#logDir = opts.logDir ?? `${opts.root.replace(/\/+$/, "")}-logs`;
    this.#extra = opts.extraGlobalArgs ?? [];
    this.timeoutMs = opts.timeoutMs && opts.timeoutMs > 0 ? opts.timeoutMs : DEFAULT_RUNTIME_TIMEOUT_MS;
    this.quickTimeoutMs = Math.min(this.timeoutMs, QUICK_TIMEOUT_MS);
    // The exec fifo is runc's own protocol (<root>/<id>/exec.fifo), not every runtime's.
    this.#startHelper = basename(opts.binary) === "runc" ? opts.startHelper : undefined;
  }

  /** Runs every runtime command (create and exec above all) from `sealed.path` whenever it has one. */
  useSealedCopy(sealed: { readonly path: string | undefined }): void {
    this.#sealed = sealed;
  }

  get execPath(): string {
    return this.#sealed?.path ?? this.binary;
  }

  globalArgs(): string[] {
    return ["--root", this.root, ...this.#extra];
  }

  /**
   * Runs one runtime command, killed with its process group when its limit passes or `signal`
   * fires; failures become BerthErrors carrying the runtime's message (a timeout names the
   * command and the limit, a binary that cannot be run names the handler and the binary).
   */
  async #run(what: string, args: string[], opts: { handsOnStdio?: boolean; quick?: boolean; signal?: AbortSignal | undefined } = {}): Promise<string> {
    await mkdir(this.#logDir, { recursive: true, mode: 0o700 });
    const base = join(this.#logDir, uniqueSuffix());
    const logFile = `${base}.json`;
    try {
      const res = await runCommand(this.execPath, [...this.globalArgs(), "--log", logFile, "--log-format", "json", ...args], {
        timeoutMs: opts.quick ? this.quickTimeoutMs : this.timeoutMs,
        ...(opts.signal ? { signal: opts.signal } : {}),
        ...(opts.handsOnStdio ? { outputFile: `${base}.out` } : {}),
      });
      const unfinished = unfinishedError(`runtime handler ${this.name}: ${what}`, this.binary, res);
      if (unfinished) throw unfinished;
      if (res.code === 0) return res.stdout;
      const log = await readFile(logFile, "utf8").catch(() => "");
      const status = res.signal ? `killed by ${res.signal}` : `exit status ${res.code}`;
      throw runtimeError(`${this.name} ${what}`, runtimeMessage(log, res.stderr, status));
    } finally {
      await removeFile(logFile);
    }
  }

  async create(id: string, opts: CreateOptions & CallOptions): Promise<void> {
    const args = ["create", "--bundle", opts.bundle, "--pid-file", opts.pidFile];
    if (opts.consoleSocket) args.push("--console-socket", opts.consoleSocket);
    if (opts.noPivot) args.push("--no-pivot");
    // Without a console socket, runc hands its stdio to the container's init: never pipes.
    await this.#run(`create container ${id}`, [...args, id], { handsOnStdio: !opts.consoleSocket, signal: opts.signal });
  }

  async start(id: string, opts: StartOptions = {}): Promise<void> {
    // berth-start runs no hooks: a spec with poststart hooks starts through runc start (runc 1.1
    // runs them at the end of create, runc 1.2 and later in start).
    const pid = opts.initPid ?? 0;
    if (this.#startHelper && !opts.poststartHooks && Number.isInteger(pid) && pid > 0 && /^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(id)) {
      // runc start's own work, done by berth-start: read the byte the created container's init
      // writes to its exec fifo once a reader opens it, then remove the fifo. It waits while the
      // init (its pid) is still runc's init. Exit 3: no init waits on the fifo (nothing was
      // changed): runc start decides and reports in its own words.
      const res = await runCommand(this.#startHelper, [join(this.root, id, "exec.fifo"), String(pid)], { timeoutMs: this.timeoutMs, ...(opts.signal ? { signal: opts.signal } : {}) });
      const unfinished = unfinishedError(`runtime handler ${this.name}: start container ${id}`, this.#startHelper, res);
      if (unfinished) throw unfinished;
      if (res.code === 0) return;
      if (res.code !== 3) throw runtimeError(`${this.name} start container ${id}`, runtimeMessage("", res.stderr, `berth-start exit status ${res.code ?? res.signal}`));
    }
    await this.#run(`start container ${id}`, ["start", id], { signal: opts.signal });
  }

  async state(id: string, opts: CallOptions = {}): Promise<OciState> {
    const out = await this.#run(`state of container ${id}`, ["state", id], { quick: true, signal: opts.signal });
    return parseState(out, `${this.name} state of container ${id}`);
  }

  async kill(id: string, signal: string | number, all = false, opts: CallOptions = {}): Promise<void> {
    const args = ["kill"];
    if (all) args.push("--all");
    await this.#run(`kill container ${id}`, [...args, id, String(signal)], { quick: true, signal: opts.signal });
  }

  async delete(id: string, opts: { force?: boolean } & CallOptions = {}): Promise<void> {
    const args = ["delete"];
    if (opts.force) args.push("--force");
    try {
      await this.#run(`delete container ${id}`, [...args, id], { quick: true, signal: opts.signal });
    } catch (err) {
      if (isNotFound(err)) return;
      throw err;
    }
  }

  async execCommand(id: string, opts: ExecOptions): Promise<{ file: string; args: string[]; processFile: string }> {
    const workDir = opts.workDir ?? dirname(opts.pidFile);
    await mkdir(workDir, { recursive: true, mode: 0o700 });
    const processFile = join(workDir, `process-${uniqueSuffix()}.json`);
    await writeFile(processFile, JSON.stringify(opts.process), { mode: 0o600, flag: "wx" });
    const args = [...this.globalArgs(), "exec", "--process", processFile, "--pid-file", opts.pidFile];
    if (opts.consoleSocket) args.push("--tty", "--console-socket", opts.consoleSocket);
    if (opts.detach) args.push("--detach");
    args.push(id);
    return opts.wrapper?.length
      ? { file: opts.wrapper[0]!, args: [...opts.wrapper.slice(1), this.execPath, ...args], processFile }
      : { file: this.execPath, args, processFile };
  }

  async exec(id: string, opts: ExecOptions): Promise<ChildProcess> {
    const { file, args, processFile } = await this.execCommand(id, opts);
    const child = spawn(file, args, { stdio: opts.wrapper?.length ? ["pipe", "pipe", "pipe", "pipe"] : ["pipe", "pipe", "pipe"] });
    child.once("close", () => void removeFile(processFile));
    child.once("error", () => void removeFile(processFile));
    return child;
  }

  async update(id: string, resources: LinuxResources): Promise<void> {
    await mkdir(this.#logDir, { recursive: true, mode: 0o700 });
    const file = join(this.#logDir, `resources-${uniqueSuffix()}.json`);
    await writeFile(file, JSON.stringify(resources), { mode: 0o600, flag: "wx" });
    try {
      await this.#run(`update container ${id}`, ["update", "--resources", file, id]);
    } finally {
      await rm(file, { force: true });
    }
  }

  async pause(id: string): Promise<void> {
    await this.#run(`pause container ${id}`, ["pause", id], { quick: true });
  }

  async resume(id: string): Promise<void> {
    await this.#run(`resume container ${id}`, ["resume", id], { quick: true });
  }

  async list(): Promise<OciState[]> {
    const out = await this.#run("list containers", ["list", "--format", "json"], { quick: true });
    const parsed = JSON.parse(out.trim() || "null") as unknown;
    if (parsed === null) return [];
    if (!Array.isArray(parsed)) throw internal(`${this.name} list containers: unexpected output`);
    return parsed.map((s) => toState(s as Record<string, unknown>));
  }

  async features(): Promise<RuntimeFeatures> {
    if (this.#features) return this.#features;
    try {
      const out = await this.#run("features", ["features"], { quick: true });
      const f = JSON.parse(out) as { mountOptions?: string[]; linux?: { namespaces?: string[] } };
      this.#features = { mountOptions: f.mountOptions ?? [], namespaces: f.linux?.namespaces ?? [] };
    } catch (err) {
      this.#features = { mountOptions: [], namespaces: [], error: (err as Error).message };
    }
    return this.#features;
  }
}

/**
 * Removes one file berth made; a missing one is fine, other failures are ignored (a leftover in a
 * directory removed with its container). One unlink: fs.rm's lstat and option checks cost a
 * thread-pool round trip more on every runtime call.
 */
export async function removeFile(path: string): Promise<void> {
  await unlink(path).catch(() => {});
}

function toState(s: Record<string, unknown>): OciState {
  return {
    id: String(s.id),
    status: String(s.status) as OciState["status"],
    pid: typeof s.pid === "number" ? s.pid : 0,
    bundle: String(s.bundle ?? ""),
    created: typeof s.created === "string" ? s.created : undefined,
    annotations: (s.annotations as Record<string, string> | undefined) ?? undefined,
  };
}

export function parseState(out: string, what: string): OciState {
  try {
    return toState(JSON.parse(out) as Record<string, unknown>);
  } catch (err) {
    throw internal(`${what}: cannot parse runtime output`, err);
  }
}
