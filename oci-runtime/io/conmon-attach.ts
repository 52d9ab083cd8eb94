// Attach to a container's main process through conmon. conmon listens on a
// SOCK_SEQPACKET unix socket (`<socket-dir>/<id>/attach`, where
// `<socket-dir>/<id>` is conmon's symlink to the bundle; `<bundle>/attach`
// with --full-attach). Every packet conmon sends is one stream byte (2 stdout,
// 3 stderr) and the payload; a client sends raw stdin bytes, and shutting
// its write side makes conmon close the container's stdin unless conmon runs
// with --leave-stdin-open. Node cannot open SEQPACKET sockets, so the berth-io
// helper bridges it, keeping packet boundaries (stdout on fd 1, stderr on fd 3).
// Resizing goes through conmon's control fifo `<bundle>/ctl`: "1 <rows> <cols>\n".

import { spawn } from "node:child_process";
import { constants } from "node:fs";
import { open } from "node:fs/promises";
import type { Readable } from "node:stream";
import { failedPrecondition } from "../foundation/errdefs.ts";
import { collectText, copyInto, feedStdin, terminate, waitClose, type ProcessIO, type TerminalSize } from "./process-io.ts";

export interface ConmonAttachOptions {
  /** berth-io helper binary. */
  helperPath: string;
  /** conmon's attach socket. */
  attachSocketPath: string;
  /** conmon's control fifo (`<bundle>/ctl`), for terminal resize. */
  ctlPath?: string;
}

/** conmon's window-resize control line. */
export const conmonResizeLine = (s: TerminalSize) => `1 ${s.height} ${s.width}\n`;

/** Writes a resize request to conmon's control fifo (fails fast when conmon is gone). */
export async function resizeConmonTerminal(ctlPath: string, size: TerminalSize): Promise<void> {
  const fh = await open(ctlPath, constants.O_WRONLY | constants.O_NONBLOCK);
  try {
    await fh.write(conmonResizeLine(size));
  } finally {
    await fh.close();
  }
}

/**
 * Streams the container's output to io.stdout / io.stderr and io.stdin to
 * it until the container exits (conmon closes the socket) or `signal` aborts.
 * Output streams are not ended.
 */
export async function attachToConmon(opts: ConmonAttachOptions, io: ProcessIO, signal?: AbortSignal): Promise<void> {
  const child = spawn(opts.helperPath, ["attach", ...(io.stdin ? [] : ["--no-stdin"]), opts.attachSocketPath], {
    stdio: [io.stdin ? "pipe" : "ignore", "pipe", "pipe", "pipe"],
  });
  const onAbort = () => terminate(child, 500);
  if (signal?.aborted) onAbort();
  signal?.addEventListener("abort", onAbort, { once: true });
  feedStdin(io.stdin, child.stdin);
  copyInto(child.stdout, io.stdout);
  copyInto(child.stdio[3] as Readable | null, io.stderr ?? io.stdout);
  const errText = collectText(child.stderr);
  let resizing = true;
  const resizeLoop = (async () => {
    if (!io.resize || !opts.ctlPath) return;
    try {
      for await (const s of io.resize) {
        if (!resizing) break;
        await resizeConmonTerminal(opts.ctlPath, s).catch(() => undefined);
      }
    } catch { /* session gone */ }
  })();
  try {
    const code = await waitClose(child);
    if (code !== 0 && !signal?.aborted) {
      throw failedPrecondition(`attach to ${opts.attachSocketPath} failed: ${errText() || `helper exit code ${code}`}`);
    }
  } finally {
    resizing = false;
    signal?.removeEventListener("abort", onAbort);
    void resizeLoop;
  }
}
