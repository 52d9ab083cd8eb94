// Plumbing shared by the exec, attach and port-forward helpers.

import type { ChildProcess } from "node:child_process";
import { readFile } from "node:fs/promises";
import type { Readable, Writable } from "node:stream";

export interface TerminalSize { width: number; height: number }

/** The process side of an interactive session (structurally the streaming server's StreamIO). */
export interface ProcessIO {
  stdin?: Readable;
  stdout?: Writable;
  stderr?: Writable;
  resize?: AsyncIterable<TerminalSize>;
}

/** Copies `src` into `dst` without ending `dst` (the caller ends it once everything is done). */
export function copyInto(src: Readable | null, dst: Writable | undefined): void {
  if (!src) return;
  if (!dst) { src.resume(); return; }
  src.on("data", (chunk: Buffer) => {
    if (!dst.write(chunk)) {
      src.pause();
      dst.once("drain", () => src.resume());
    }
  });
  dst.on("error", () => src.resume());
}

/** Feeds `src` to a child's stdin and ends it when `src` ends; a child that stops reading is not an error. */
export function feedStdin(src: Readable | undefined, dst: Writable | null): void {
  if (!dst) return;
  dst.on("error", () => undefined); // EPIPE when the process exits without reading
  if (!src) { dst.end(); return; }
  src.pipe(dst);
  src.on("error", () => dst.end());
}

/** Collects up to `limit` bytes of a stream as text (for error messages). */
export function collectText(src: Readable | null, limit = 8192): () => string {
  let text = "";
  src?.on("data", (c: Buffer) => { if (text.length < limit) text += c.toString("utf8"); });
  return () => text.trim();
}

/** Resolves with the exit code once the child exited and its stdio closed (128+N for signal N). */
export function waitClose(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code, sig) => {
      if (code !== null) return resolve(code);
      const signals: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15, SIGPIPE: 13 };
      resolve(128 + (sig ? signals[sig] ?? 0 : 0));
    });
  });
}

/** Kills the process whose pid runc wrote to `pidFile` (if any). */
export async function killPidFile(pidFile: string, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
  const pid = Number((await readFile(pidFile, "utf8").catch(() => "")).trim());
  if (Number.isInteger(pid) && pid > 1) {
    try { process.kill(pid, signal); } catch { /* already gone */ }
  }
}

/** Stops a helper: SIGTERM, then SIGKILL after `graceMs`. */
export function terminate(child: ChildProcess, graceMs = 2000): void {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const t = setTimeout(() => { if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL"); }, graceMs);
  t.unref();
  child.once("exit", () => clearTimeout(t));
}
