// Single-use streaming tokens with a time to live. A token maps to the
// request it was issued for; consuming it removes it.

import { randomOctets } from "../../oci-runtime/foundation/builtins.ts";
import { invalidArgument } from "../../oci-runtime/foundation/errdefs.ts";

/** Linux's MAX_ARG_STRLEN: execve refuses a longer argument. */
export const MAX_EXEC_ARG_BYTES = 128 * 1024;
/** Most bytes of all arguments of one Exec (what a live token may hold). */
export const MAX_EXEC_CMD_BYTES = 1024 * 1024;
export const MAX_EXEC_ARGS = 4096;

/** Refuses an Exec command execve could not take, or one larger than berth keeps for a token. */
export function checkExecCmd(cmd: readonly string[]): void {
  if (cmd.length === 0) throw invalidArgument("cmd must not be empty");
  if (cmd.length > MAX_EXEC_ARGS) throw invalidArgument(`cmd has ${cmd.length} arguments, the limit is ${MAX_EXEC_ARGS}`);
  let total = 0;
  cmd.forEach((arg, i) => {
    const n = Buffer.byteLength(arg);
    if (n > MAX_EXEC_ARG_BYTES) throw invalidArgument(`cmd[${i}] is ${n} bytes, the limit is ${MAX_EXEC_ARG_BYTES}`);
    if (arg.includes("\0")) throw invalidArgument(`cmd[${i}] contains a NUL byte`);
    total += n;
  });
  if (total > MAX_EXEC_CMD_BYTES) throw invalidArgument(`cmd is ${total} bytes, the limit is ${MAX_EXEC_CMD_BYTES}`);
}

export interface ExecRequest {
  containerId: string;
  cmd: string[];
  tty: boolean;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
}

export interface AttachRequest {
  containerId: string;
  tty: boolean;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
}

export interface PortForwardRequest {
  podSandboxId: string;
  /** Ports named in the RPC: the only ones a client may forward; empty (kubelet's SPDY case) allows any port. */
  ports: number[];
}

export type StreamKind = "exec" | "attach" | "portforward";

export type StreamRequest =
  | { kind: "exec"; request: ExecRequest }
  | { kind: "attach"; request: AttachRequest }
  | { kind: "portforward"; request: PortForwardRequest };

export interface TokenStoreOptions {
  /** Milliseconds a token stays valid (default 60 000). */
  ttlMs?: number;
  /** Clock, for tests. */
  now?: () => number;
  /** Maximum live tokens (default 10 000); the oldest are evicted beyond it. */
  maxTokens?: number;
  /** Maximum bytes of Exec commands held by live tokens (default 64 MiB); the oldest are evicted beyond it. */
  maxBytes?: number;
}

const sizeOf = (req: StreamRequest): number =>
  256 + (req.kind === "exec" ? req.request.cmd.reduce((n, a) => n + Buffer.byteLength(a), 0) : req.kind === "portforward" ? req.request.ports.length * 8 : 0);

export class TokenStore {
  #entries = new Map<string, { req: StreamRequest; expires: number; bytes: number }>();
  #ttl: number;
  #now: () => number;
  #max: number;
  #maxBytes: number;
  #bytes = 0;

  constructor(opts: TokenStoreOptions = {}) {
    this.#ttl = opts.ttlMs ?? 60_000;
    this.#now = opts.now ?? Date.now;
    this.#max = opts.maxTokens ?? 10_000;
    this.#maxBytes = opts.maxBytes ?? 64 * 1024 * 1024;
  }

  /** Stores the request and returns a new URL-safe token; an Exec command is checked first (checkExecCmd). */
  issue(req: StreamRequest): string {
    if (req.kind === "exec") checkExecCmd(req.request.cmd);
    this.#sweep();
    const bytes = sizeOf(req);
    while (this.#entries.size >= this.#max || (this.#entries.size > 0 && this.#bytes + bytes > this.#maxBytes)) {
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#delete(oldest);
    }
    const token = randomOctets(24).toString("base64url");
    this.#entries.set(token, { req, expires: this.#now() + this.#ttl, bytes });
    this.#bytes += bytes;
    return token;
  }

  /** Removes and returns the request of a live token of the given kind; undefined if unknown, used, expired or of another kind. */
  consume(token: string, kind: StreamKind): StreamRequest | undefined {
    const e = this.#entries.get(token);
    if (!e) return undefined;
    this.#delete(token);
    if (e.expires <= this.#now()) return undefined;
    if (e.req.kind !== kind) return undefined;
    return e.req;
  }

  get size(): number { this.#sweep(); return this.#entries.size; }

  /** Bytes held by live tokens' requests. */
  get bytes(): number { return this.#bytes; }

  #delete(token: string): void {
    const e = this.#entries.get(token);
    if (!e) return;
    this.#entries.delete(token);
    this.#bytes -= e.bytes;
  }

  #sweep(): void {
    const now = this.#now();
    for (const [t, e] of this.#entries) if (e.expires <= now) this.#delete(t);
  }
}
