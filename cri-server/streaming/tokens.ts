// Single-use streaming tokens with a time to live. A token maps to the
// request it was issued for; consuming it removes it.

import { randomBytes } from "node:crypto";

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
}

export class TokenStore {
  #entries = new Map<string, { req: StreamRequest; expires: number }>();
  #ttl: number;
  #now: () => number;
  #max: number;

  constructor(opts: TokenStoreOptions = {}) {
    this.#ttl = opts.ttlMs ?? 60_000;
    this.#now = opts.now ?? Date.now;
    this.#max = opts.maxTokens ?? 10_000;
  }

  /** Stores the request and returns a new URL-safe token. */
  issue(req: StreamRequest): string {
    this.#sweep();
    while (this.#entries.size >= this.#max) {
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#entries.delete(oldest);
    }
    const token = randomBytes(24).toString("base64url");
    this.#entries.set(token, { req, expires: this.#now() + this.#ttl });
    return token;
  }

  /** Removes and returns the request of a live token of the given kind; undefined if unknown, used, expired or of another kind. */
  consume(token: string, kind: StreamKind): StreamRequest | undefined {
    const e = this.#entries.get(token);
    if (!e) return undefined;
    this.#entries.delete(token);
    if (e.expires <= this.#now()) return undefined;
    if (e.req.kind !== kind) return undefined;
    return e.req;
  }

  get size(): number { this.#sweep(); return this.#entries.size; }

  #sweep(): void {
    const now = this.#now();
    for (const [t, e] of this.#entries) if (e.expires <= now) this.#entries.delete(t);
  }
}
