// The OCI runtime driver interface: one implementation per runtime handler (runc, crun, ...).
import type { ChildProcess } from "node:child_process";
import type { LinuxResources, Process } from "../bundle-spec/types.ts";

/** Status as reported by `<runtime> state`. */
export type OciStatus = "creating" | "created" | "running" | "stopped" | "paused";

export interface OciState {
  id: string;
  status: OciStatus;
  /** 0 when the container is stopped. */
  pid: number;
  bundle: string;
  /** RFC 3339 creation time as written by the runtime. */
  created?: string;
  annotations?: Record<string, string>;
}

export interface CreateOptions {
  bundle: string;
  pidFile: string;
  consoleSocket?: string;
  noPivot?: boolean;
}

export interface ExecOptions {
  /** Full process spec written to a file and passed with `--process`. */
  process: Process;
  /** Where the runtime writes the exec'd process's pid. */
  pidFile: string;
  /** Temp dir for the process spec file (made, 0700, when missing); default: dirname(pidFile). */
  workDir?: string;
  consoleSocket?: string;
  detach?: boolean;
  /** Run `<wrapper...> <runtime> <args>` instead of the runtime, with a fourth stdio pipe (fd 3). */
  wrapper?: string[];
}

/** Per-call options: `signal` (the RPC's deadline or cancellation) kills the runtime's process group. */
export interface CallOptions {
  signal?: AbortSignal | undefined;
}

export interface StartOptions extends CallOptions {
  /** The bundle's spec has poststart hooks: only the runtime's own start runs them. */
  poststartHooks?: boolean;
  /** The created container's init pid (its pid file), which berth-start waits on; unknown: the runtime's start. */
  initPid?: number;
}

export interface RuntimeFeatures {
  mountOptions: string[];
  /** linux.namespaces of `<runtime> features` (the namespace types it can create or join). */
  namespaces?: string[];
  /** Why `features` gave nothing (the runtime has no such command, or its output was unreadable). */
  error?: string;
}

export interface OciRuntime {
  /** The handler name this runtime serves (e.g. "runc"). */
  readonly name: string;
  readonly binary: string;
  /** What create (through the monitor) and exec run: a sealed copy of `binary` when berthd holds one (sealed-binary.ts), else `binary`. */
  readonly execPath: string;
  readonly root: string;
  /** Every call is bounded by the handler's limit (DEADLINE_EXCEEDED naming it); a binary that cannot be run is FAILED_PRECONDITION. */
  create(id: string, opts: CreateOptions & CallOptions): Promise<void>;
  start(id: string, opts?: StartOptions): Promise<void>;
  /** Throws notFound when the runtime has no such container. */
  state(id: string, opts?: CallOptions): Promise<OciState>;
  /** Signal by name ("SIGTERM", "KILL") or number. A stopped or missing container throws notFound/failedPrecondition. */
  kill(id: string, signal: string | number, all?: boolean, opts?: CallOptions): Promise<void>;
  /** Idempotent: a container the runtime does not know is not an error. */
  delete(id: string, opts?: { force?: boolean } & CallOptions): Promise<void>;
  /** Starts `<runtime> exec --process ...` with piped stdio (or detached); the caller owns the child. */
  exec(id: string, opts: ExecOptions): Promise<ChildProcess>;
  /**
   * What exec would run, for a caller that starts it itself (ExecSync through berth-spawn): the
   * process file is written; the caller removes it once the command has ended.
   */
  execCommand(id: string, opts: ExecOptions): Promise<{ file: string; args: string[]; processFile: string }>;
  update(id: string, resources: LinuxResources): Promise<void>;
  pause(id: string): Promise<void>;
  resume(id: string): Promise<void>;
  list(): Promise<OciState[]>;
  /** `<runtime> features` (empty lists when the runtime has no such command). */
  features(): Promise<RuntimeFeatures>;
  /** Global arguments (`--root` and friends) for callers that start the runtime themselves (conmon). */
  globalArgs(): string[];
}
