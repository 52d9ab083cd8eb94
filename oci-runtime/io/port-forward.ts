// Port-forward one connection to TCP 127.0.0.1:<port> inside a network
// namespace. Node cannot setns() a thread, so a berth-io helper enters the
// namespace, connects and copies bytes (one helper per connection). For
// host-network sandboxes Node connects directly.

import { spawn } from "node:child_process";
import net from "node:net";
import type { Duplex } from "node:stream";
import { unavailable } from "../foundation/errdefs.ts";
import { collectText, terminate, waitClose } from "./process-io.ts";

export interface PortForwardOptions {
  /** berth-io helper binary (needed with netnsPath). */
  helperPath: string;
  /** The sandbox's pinned network namespace; undefined for host network. */
  netnsPath?: string;
  port: number;
}

/**
 * Connects `socket` to the port; resolves when the target closed the
 * connection (after `socket` was ended) and rejects with a BerthError naming
 * the reason when the connection fails (e.g. refused).
 */
export async function forwardPort(opts: PortForwardOptions, socket: Duplex, signal?: AbortSignal): Promise<void> {
  if (!Number.isInteger(opts.port) || opts.port < 1 || opts.port > 65535) throw unavailable(`invalid port ${opts.port}`);
  return opts.netnsPath ? forwardViaHelper(opts, opts.netnsPath, socket, signal) : forwardDirect(opts.port, socket, signal);
}

async function forwardDirect(port: number, socket: Duplex, signal?: AbortSignal): Promise<void> {
  const tcp = net.connect({ host: "127.0.0.1", port, allowHalfOpen: true });
  await new Promise<void>((resolve, reject) => {
    tcp.once("connect", resolve);
    tcp.once("error", (err: NodeJS.ErrnoException) => reject(unavailable(`dial tcp4 127.0.0.1:${port}: connect: ${err.code === "ECONNREFUSED" ? "connection refused" : err.message}`)));
  });
  const onAbort = () => tcp.destroy();
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    await new Promise<void>((resolve) => {
      socket.pipe(tcp);
      tcp.pipe(socket);
      tcp.on("error", () => undefined);
      tcp.once("end", () => tcp.end()); // the target closed: the forward is over
      socket.on("error", () => tcp.destroy());
      tcp.once("close", () => resolve());
    });
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
}

async function forwardViaHelper(opts: PortForwardOptions, netnsPath: string, socket: Duplex, signal?: AbortSignal): Promise<void> {
  const child = spawn(opts.helperPath, ["connect", netnsPath, String(opts.port)], { stdio: ["pipe", "pipe", "pipe"] });
  const onAbort = () => terminate(child, 500);
  signal?.addEventListener("abort", onAbort, { once: true });
  child.stdin.on("error", () => undefined);
  socket.pipe(child.stdin);
  socket.on("error", () => terminate(child, 500));
  child.stdout.pipe(socket, { end: false });
  const errText = collectText(child.stderr);
  try {
    const code = await waitClose(child);
    if (code !== 0 && !signal?.aborted) throw unavailable(errText().toLowerCase() || `port-forward helper exit code ${code}`);
    if (!socket.writableEnded) socket.end();
  } finally {
    signal?.removeEventListener("abort", onAbort);
    socket.unpipe(child.stdin);
  }
}
