// Runs a helper binary (mount, unshare, a CNI plugin) with optional stdin,
// environment and a kill-after timeout. Output is collected as text.

import { spawn } from "node:child_process";

export interface RunOptions {
  stdin?: string;
  env?: NodeJS.ProcessEnv;
  /** Kill the process group with SIGKILL after this many ms (0 or absent: no limit). */
  timeoutMs?: number;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** Set when the binary could not be started at all (ENOENT, EACCES). */
  spawnError?: Error;
}

export function runCommand(file: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(file, args, {
      env: opts.env ?? process.env,
      stdio: ["pipe", "pipe", "pipe"],
      // Own process group so a timeout also kills helpers the binary started (iptables...).
      detached: true,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    let spawnError: Error | undefined;
    let timer: NodeJS.Timeout | undefined;
    const killGroup = () => {
      try { if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL"); } catch { /* already gone */ }
    };
    if (opts.timeoutMs && opts.timeoutMs > 0) {
      timer = setTimeout(() => { timedOut = true; killGroup(); }, opts.timeoutMs);
    }
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.stdin.on("error", () => { /* the child may exit without reading stdin */ });
    child.on("error", (e) => { spawnError = e; });
    child.on("close", (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({
        code, signal, timedOut,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        ...(spawnError ? { spawnError } : {}),
      });
    });
    child.stdin.end(opts.stdin ?? "");
  });
}

/** A one-line summary of a failed run for error messages. */
export function describeFailure(r: RunResult): string {
  if (r.spawnError) return r.spawnError.message;
  if (r.timedOut) return "timed out";
  const text = (r.stderr.trim() || r.stdout.trim()).split("\n").slice(-3).join("; ");
  const how = r.signal ? `killed by ${r.signal}` : `exit status ${r.code}`;
  return text ? `${how}: ${text}` : how;
}
