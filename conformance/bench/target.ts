// What a benchmark needs from a runtime under test: a CRI client, the processes to measure,
// and a way to get a fresh instance (new root) for cold pulls.
import type { CriClient } from "../lib/cri-client.ts";
import type { RuntimeName } from "./args.ts";
import type { BenchImages } from "./images.ts";

export interface Instance {
  client: CriClient;
  /**
   * The daemon's processes: containerd; berthd and its berth-spawn (the process starter it keeps
   * beside it, so its memory and CPU count as the daemon's).
   */
  daemonPids(): number[];
  /** Per-pod/per-container helper processes (conmon, containerd-shim-runc-v2). */
  helperPids(): number[];
  /** How the daemon runs, for the report (berth: compiled dist/ or TypeScript sources, and V8 flags). */
  note?: string;
  /** The end of the daemon's log, for diagnosing failures. */
  logTail(): string;
  /** Stops the daemon, removes leftovers (mounts, shims, runtime state) and its directories. */
  stop(): Promise<void>;
}

export interface Target {
  name: RuntimeName;
  /** The name of the helper processes, for the report. */
  helperName: string;
  /** A cgroup parent (under every hierarchy) for this runtime's pods; removed at the end. */
  cgroupParent: string;
  /** Directory for pod log directories. */
  logDir: string;
  /** Images pulled (untimed) before pods are started. */
  prepull: string[];
  /** Starts an instance with a fresh root and state. */
  start(): Promise<Instance>;
  /** Removes what the target set up for all its instances (network, cgroup parent). */
  close(): Promise<void>;
}

export interface BenchEnv {
  registry: string;
  /** containerd-style hosts.toml directory with a plain-http entry for the registry. */
  hostsDir: string;
  images: BenchImages;
  /** A scratch directory removed at the end of the run. */
  workDir: string;
}
