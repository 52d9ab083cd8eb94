// A small HTTP(S) request helper on node:http/https: per-host TLS options (ca, skip_verify),
// a stall (idle) timeout that also covers the response body, and no automatic redirects.
import type * as Http from "node:http";
import type * as Https from "node:https";
import { readBoundedFile } from "../../oci-runtime/foundation/bounded-file.ts";
import type { IncomingMessage } from "node:http";

// Taken with getBuiltinModule, not an ESM import: importing node:http as ESM reads every export,
// and the http.WebSocket getter loads Node's bundled fetch (undici) at start-up (idle RSS
// 71.4 -> 69.0 MB measured). And only at the first request: a berthd that has pulled nothing
// has not loaded it (idle RSS 61.2 -> 60.7 MB measured).
const http = () => process.getBuiltinModule("node:http") as typeof Http;
// node:https (and with it node:tls) only for the first https URL: a node that pulls over plain
// http (a loopback registry or a mirror) never loads them. 2.9 MB of RSS measured (1.9 anonymous).
const https = () => process.getBuiltinModule("node:https") as typeof Https;

export class StallError extends Error {
  constructor(message: string) { super(message); this.name = "StallError"; }
}

export interface TlsOptions { skipVerify: boolean; ca: string[] }

const agents = new Map<string, Http.Agent>();

/** Largest CA bundle read for a hosts.toml `ca` entry (Debian's whole ca-certificates.crt is ~200 KiB). */
export const MAX_CA_BYTES = 4 * 1024 * 1024;

async function readCa(file: string): Promise<Buffer> {
  try {
    return await readBoundedFile(file, MAX_CA_BYTES);
  } catch (err) {
    throw new Error(`ca file ${file} ${(err as Error).message}`, { cause: err });
  }
}

/** A keep-alive agent per scheme and TLS configuration. */
export async function agentFor(url: URL, tls: TlsOptions): Promise<Http.Agent> {
  if (url.protocol === "http:") {
    let a = agents.get("http");
    if (!a) { a = new (http().Agent)({ keepAlive: true, maxSockets: 16 }); agents.set("http", a); }
    return a;
  }
  const key = `https|${tls.skipVerify}|${tls.ca.join(",")}`;
  let a = agents.get(key);
  if (!a) {
    const ca = tls.ca.length ? await Promise.all(tls.ca.map((f) => readCa(f))) : undefined;
    a = new (https().Agent)({ keepAlive: true, maxSockets: 16, rejectUnauthorized: !tls.skipVerify, ...(ca ? { ca } : {}) });
    agents.set(key, a);
  }
  return a;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  agent: Http.Agent;
  /** Fail when no bytes move for this long (connect, headers and body). */
  stallTimeoutMs: number;
  stallMessage: string;
  /** Fail when the TCP connection is not up within this long (hosts.toml dial_timeout; 0: no limit of its own). */
  dialTimeoutMs?: number;
  /** Ends the request (and its response) with the signal's reason. */
  signal?: AbortSignal;
}

/** Sends one request and resolves with the response (body not yet read). */
export function request(url: URL, opts: RequestOptions): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const mod = url.protocol === "https:" ? https() : http();
    const req = mod.request(url, { method: opts.method ?? "GET", headers: opts.headers ?? {}, agent: opts.agent, ...(opts.signal ? { signal: opts.signal } : {}) });
    req.setTimeout(opts.stallTimeoutMs, () => req.destroy(new StallError(opts.stallMessage)));
    const dialMs = opts.dialTimeoutMs ?? 0;
    if (dialMs > 0) {
      req.on("socket", (s) => {
        if (!s.connecting) return; // a reused keep-alive connection
        const t = setTimeout(() => req.destroy(new StallError(`connecting to ${url.host} took longer than the dial_timeout of ${dialMs} ms`)), dialMs);
        const clear = () => clearTimeout(t);
        s.once("connect", clear);
        s.once("close", clear);
      });
    }
    req.on("error", reject);
    req.on("response", (res) => {
      // The socket timeout keeps running while the body streams; surface it on the body too.
      req.on("error", (err) => res.destroy(err));
      resolve(res);
    });
    req.end(opts.body);
  });
}

/** Reads a whole (small) body with a size limit. */
export async function readBody(res: IncomingMessage, limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > limit) { res.destroy(); throw new Error(`${what} is larger than ${limit} bytes`); }
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

/** Drains and discards a body so the connection can be reused. */
export function discard(res: IncomingMessage) {
  res.resume();
  res.on("error", () => {});
}

/** Redirects followed for one request. */
export const MAX_REDIRECTS = 5;

/**
 * The headers to send where a registry redirects: credentials and the host's configured headers
 * are for the registry, not for another origin, so both are dropped when the origin changes;
 * `own` names headers the request itself set (a Range), which stay.
 */
export function redirectHeaders(from: URL, to: URL, h: Record<string, string>, hostHeaders: Iterable<string>, own: Iterable<string>): Record<string, string> {
  if (to.origin === from.origin) return h;
  const drop = new Set(hostHeaders);
  for (const k of own) drop.delete(k);
  drop.add("authorization");
  return Object.fromEntries(Object.entries(h).filter(([k]) => !drop.has(k)));
}

/**
 * A blob GET that another process (a layer's unpack process) sends by itself: berthd's client
 * resolved the first host, its headers and the authorization it holds for the repository.
 */
export interface DirectBlob {
  url: string;
  headers: Record<string, string>;
  /** Names among `headers` that hosts.toml configured (dropped, with authorization, on a redirect to another origin). */
  hostHeaders: string[];
  tls: TlsOptions;
  dialTimeoutMs: number;
  stallTimeoutMs: number;
  /** The blob's size: the response must be exactly this long. */
  size: number;
  digest: string;
}

/**
 * Sends a DirectBlob's GET, following up to MAX_REDIRECTS redirects; resolves with a 200
 * response (body not yet read). Anything else (a 401, a 404, a 5xx, an error) throws: the
 * caller hands the download back to berthd's client, which knows challenges, mirrors and retries.
 */
export async function openDirectBlob(d: DirectBlob, signal?: AbortSignal): Promise<IncomingMessage> {
  let url = new URL(d.url);
  let h = d.headers;
  for (let hop = 0; ; hop++) {
    const agent = await agentFor(url, d.tls);
    const res = await request(url, {
      agent, headers: h, dialTimeoutMs: d.dialTimeoutMs, stallTimeoutMs: d.stallTimeoutMs,
      stallMessage: `registry ${url.host} stalled for ${d.stallTimeoutMs} ms on blob ${d.digest}`, ...(signal ? { signal } : {}),
    });
    const status = res.statusCode ?? 0;
    const location = res.headers.location;
    if (status >= 300 && status < 400 && location && hop < MAX_REDIRECTS) {
      discard(res);
      const next = new URL(location, url);
      h = redirectHeaders(url, next, h, d.hostHeaders, []);
      url = next;
      continue;
    }
    if (status !== 200) {
      discard(res);
      throw new Error(`registry ${url.host} answered http ${status} for blob ${d.digest}`);
    }
    return res;
  }
}
