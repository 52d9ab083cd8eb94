// What the streaming server needs from the rest of berth. The integrator
// implements it with container lookups and the helpers in oci-runtime/io.

import type { Duplex, Readable, Writable } from "node:stream";
import type { AttachRequest, ExecRequest } from "./tokens.ts";

export interface TerminalSize { width: number; height: number }

export interface StreamIO {
  /** Present when the client sends stdin; ends when the client half-closes it. */
  stdin?: Readable;
  stdout?: Writable;
  /** Absent with a TTY (stdout carries both). */
  stderr?: Writable;
  /** Terminal sizes as the client sends them (TTY only). */
  resize?: AsyncIterable<TerminalSize>;
}

export interface StreamingBackend {
  /** Runs the command; resolves with its exit code once it exited and its output was written. Throw a BerthError for failures to start. */
  exec(req: ExecRequest, io: StreamIO, signal: AbortSignal): Promise<{ exitCode: number }>;
  /** Attaches to the container's main process; resolves when the process exits or `signal` aborts (client went away). */
  attach(req: AttachRequest, io: StreamIO, signal: AbortSignal): Promise<void>;
  /** Connects `socket` to TCP 127.0.0.1:port inside the sandbox's network namespace; rejects when the connection fails. */
  portForward(podSandboxId: string, port: number, socket: Duplex, signal: AbortSignal): Promise<void>;
}
