// What the streaming server needs from the rest of berth. `oci-backend.ts` implements
// StreamingBackend with the helpers in oci-runtime/io over a StreamTargets, the narrow
// view of berth's containers and pods that the daemon passes in (cri-server/streaming-backend.ts).
// This room never imports the lifecycle code (container/, sandbox/, runtime/).

import type { Duplex } from "node:stream";
import type { ProcessIO, TerminalSize } from "../../oci-runtime/io/process-io.ts";
import type { AttachRequest, ExecRequest } from "./tokens.ts";

export type { TerminalSize };

/**
 * A session's streams, handed to the exec/attach helpers as they are (oci-runtime/io's
 * ProcessIO): `stdin` is present when the client sends stdin and ends when the client
 * half-closes it; `stderr` is absent with a TTY (stdout carries both); `resize` yields
 * terminal sizes as the client sends them (TTY only).
 */
export type StreamIO = ProcessIO;

export interface StreamingBackend {
  /** Runs the command; resolves with its exit code once it exited and its output was written. Throw a BerthError for failures to start. */
  exec(req: ExecRequest, io: StreamIO, signal: AbortSignal): Promise<{ exitCode: number }>;
  /** Attaches to the container's main process; resolves when the process exits or `signal` aborts (client went away). */
  attach(req: AttachRequest, io: StreamIO, signal: AbortSignal): Promise<void>;
  /** Connects `socket` to TCP 127.0.0.1:port inside the sandbox's network namespace; rejects when the connection fails. */
  portForward(podSandboxId: string, port: number, socket: Duplex, signal: AbortSignal): Promise<void>;
}

/** A running container, as much of it as exec and attach need. */
export interface StreamContainer {
  id: string;
  /** The container's bundle directory (exec's temporary files, conmon's ctl FIFO). */
  bundle: string;
  /** The OCI runtime binary to run (a sealed copy when berthd holds one) and its --root for this container's handler. */
  runtime: { binary: string; root: string };
  /** conmon's socket directory (the attach socket is `<socketDir>/<id>/attach`). */
  socketDir: string;
}

/** The few facts about berth's containers and pods the streaming backend needs, passed in by the daemon. */
export interface StreamTargets {
  /** berth's io helper binary (config `runtime.io_helper`). */
  ioHelper(): string;
  /** The container, refreshed; throws NOT_FOUND for an unknown id and FAILED_PRECONDITION when it is not running. */
  runningContainer(id: string): Promise<StreamContainer>;
  /** The pod's network namespace path (absent for host network); throws NOT_FOUND / FAILED_PRECONDITION when unknown or not ready. */
  readyPod(id: string): { id: string; netnsPath?: string };
}
