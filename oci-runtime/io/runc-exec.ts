// Interactive exec through the OCI runtime (`runc exec` in the foreground),
// in the container's namespaces and cgroup. Without a TTY the process gets
// plain pipes (runc hands them through). With a TTY, runc needs a terminal
// on its own stdio: the berth-io helper runs it on a fresh pseudo-terminal;
// runc then makes the container's console, copies between the two and
// forwards SIGWINCH, so resizing our terminal resizes the container's.

import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Writable } from "node:stream";
import { collectText, copyInto, feedStdin, killPidFile, terminate, waitClose, type ProcessIO } from "./process-io.ts";
import { warmCgroupAttach } from "../cgroups/attach-warm.ts";

export interface RuncExecOptions {
  /** OCI runtime binary (runc-compatible CLI), e.g. /usr/sbin/runc. */
  runtimePath: string;
  /** The runtime's --root (state directory); omitted when undefined. */
  root?: string;
  containerId: string;
  cmd: string[];
  tty: boolean;
  /** berth-io helper (needed for tty). */
  helperPath: string;
  /** Extra `exec` flags placed before the id, e.g. ["--env", "A=1", "--user", "0:0", "--cwd", "/"]. */
  extraArgs?: string[];
  /** Directory for the temporary pid file (default os.tmpdir()). */
  tmpDir?: string;
  /** Called with runc's or the helper's own error output when it exits non-zero with no other output. */
  onRuntimeError?: (text: string) => void;
}

export function runcExecArgs(opts: RuncExecOptions, pidFile: string): string[] {
  return [
    ...(opts.root ? ["--root", opts.root] : []),
    "exec",
    ...(opts.tty ? ["--tty"] : []),
    "--pid-file", pidFile,
    ...(opts.extraArgs ?? []),
    opts.containerId,
    ...opts.cmd,
  ];
}

async function feedResize(resize: ProcessIO["resize"], ctl: Writable | undefined): Promise<void> {
  if (!resize || !ctl) return;
  ctl.on("error", () => undefined);
  try {
    for await (const s of resize) {
      if (ctl.destroyed || ctl.writableEnded) break;
      ctl.write(`${s.height} ${s.width}\n`);
    }
  } catch { /* the resize source died with the session */ }
}

/**
 * Runs `cmd` in the container; resolves with its exit code after the process
 * exited and all its output was handed to io.stdout / io.stderr (which are not
 * ended). `signal` aborting kills the process.
 */
export async function runcExec(opts: RuncExecOptions, io: ProcessIO, signal?: AbortSignal): Promise<{ exitCode: number }> {
  if (opts.cmd.length === 0) throw new Error("exec needs a command");
  warmCgroupAttach(); // runc exec moves the process into the container's cgroups
  const dir = await mkdtemp(path.join(opts.tmpDir ?? os.tmpdir(), "berth-exec-"));
  const pidFile = path.join(dir, "pid");
  const args = runcExecArgs(opts, pidFile);
  try {
    const child = opts.tty
      ? spawn(opts.helperPath, ["pty", ...(io.stdin ? [] : ["--no-stdin"]), "--", opts.runtimePath, ...args], {
        stdio: [io.stdin ? "pipe" : "ignore", "pipe", "pipe", "pipe"],
      })
      : spawn(opts.runtimePath, args, {
        stdio: [io.stdin ? "pipe" : "ignore", "pipe", "pipe"],
      });
    const onAbort = () => { void killPidFile(pidFile).finally(() => terminate(child)); };
    if (signal?.aborted) onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });
    feedStdin(io.stdin, child.stdin);
    copyInto(child.stdout, io.stdout);
    let errText = () => "";
    if (opts.tty) {
      errText = collectText(child.stderr);
      void feedResize(io.resize, child.stdio[3] as Writable | undefined);
    } else {
      copyInto(child.stderr, io.stderr);
    }
    try {
      const exitCode = await waitClose(child);
      (child.stdio[3] as Writable | null)?.destroy();
      const text = errText();
      if (text && opts.onRuntimeError) opts.onRuntimeError(text);
      return { exitCode };
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
