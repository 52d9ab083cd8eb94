// Runs a helper binary (runc, mount, unshare, a CNI plugin, iptables) to completion, no
// shell: optional stdin, environment, working directory and a SIGKILL-after timeout.
// Output is collected as text. Never rejects: a binary that cannot be started at all
// (ENOENT, EACCES) comes back as `spawnError`.
import { spawn } from "node:child_process";
import { closeSync, openSync, readFileSync, rmSync } from "node:fs";

export interface RunOptions {
  /** Written to the binary's stdin, which is then closed; absent: stdin is /dev/null. */
  stdin?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** SIGKILL the binary (its process group with `processGroup`) after this many ms (0 or absent: no limit). */
  timeoutMs?: number;
  /** Start the binary in its own process group (and session), so a timeout also kills helpers it started (iptables...). */
  processGroup?: boolean;
  /**
   * Send stdout and stderr to this file instead of pipes, and read it back (as `stderr`) once the
   * binary exits. For binaries that hand their stdio on to a long-lived child, which would hold
   * pipes open: `runc create` gives its own to the container's init.
   */
  outputFile?: string;
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
    const outFd = opts.outputFile === undefined ? undefined : openSync(opts.outputFile, "w", 0o600);
    const child = spawn(file, args, {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: [opts.stdin === undefined ? "ignore" : "pipe", outFd ?? "pipe", outFd ?? "pipe"],
      detached: opts.processGroup ?? false,
    });
    if (outFd !== undefined) closeSync(outFd);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    let spawnError: Error | undefined;
    let timer: NodeJS.Timeout | undefined;
    const kill = () => {
      try {
        if (opts.processGroup && child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
        else child.kill("SIGKILL");
      } catch { /* already gone */ }
    };
    if (opts.timeoutMs && opts.timeoutMs > 0) {
      timer = setTimeout(() => { timedOut = true; kill(); }, opts.timeoutMs);
    }
    child.stdout?.on("data", (b: Buffer) => out.push(b));
    child.stderr?.on("data", (b: Buffer) => err.push(b));
    child.on("error", (e) => { spawnError = e; });
    // With an output file nothing is piped, so "exit" is the end (a child holding the file does not delay it).
    child.on(outFd === undefined ? "close" : "exit", (code, signal) => {
      if (timer) clearTimeout(timer);
      if (opts.outputFile !== undefined) {
        try { err.push(readFileSync(opts.outputFile)); } catch { /* nothing written */ }
        rmSync(opts.outputFile, { force: true });
      }
      resolve({
        code, signal, timedOut,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        ...(spawnError ? { spawnError } : {}),
      });
    });
    if (opts.stdin !== undefined) {
      child.stdin!.on("error", () => { /* the child may exit without reading stdin */ });
      child.stdin!.end(opts.stdin);
    }
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
