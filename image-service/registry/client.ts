// Distribution API client: resolve manifests, fetch manifests and blobs, with mirrors
// (hosts.toml), bearer/basic auth, retries with backoff, Range resume and stall timeouts.
import type { IncomingMessage } from "node:http";
import { nodeCrypto, sha256Hex } from "../../oci-runtime/foundation/builtins.ts";
import { setTimeout as sleep } from "node:timers/promises";
import { BerthError, Code, invalidArgument, notFound, unavailable } from "../../oci-runtime/foundation/errdefs.ts";
import type { Logger } from "../../oci-runtime/foundation/log.ts";
import { type Reference, defaultRegistryHost, formatReference, isDigest } from "../reference.ts";
import { type RegistryHost, loadHosts } from "./hosts.ts";
import { agentFor, type DirectBlob, discard, MAX_REDIRECTS, readBody, redirectHeaders, request, StallError } from "./http.ts";
import {
  type Credentials, basicHeader, credentialKey, credentialsFromDockerConfig, normaliseCredentials,
  parseTokenResponse, parseWwwAuthenticate, TokenCache,
} from "./auth.ts";
import { MANIFEST_ACCEPT, type Descriptor } from "./media-types.ts";

const MANIFEST_LIMIT = 8 << 20;
const USER_AGENT = "berth/0.1";

/** A request's headers: hosts.toml's first, then the request's own; berth's user-agent and authorization win. */
function requestHeaders(host: RegistryHost, own: Record<string, string>, authz: string | undefined): Record<string, string> {
  return { ...host.headers, ...own, "user-agent": USER_AGENT, ...(authz ? { authorization: authz } : {}) };
}
/** A blob's path below a host's /v2 base. */
const blobPath = (ref: Reference, digest: string) => `/${ref.path}/blobs/${digest}`;

export interface ClientOptions {
  hostsDir: string;
  authFile?: string;
  stallTimeoutMs: number;
  log: Logger;
  /** Attempts per host for a transient failure (default 5). */
  attempts?: number;
  /** First retry delay (default 200 ms), doubled each attempt. */
  backoffMs?: number;
}

export interface ManifestResult { digest: string; mediaType: string; size: number; body: Buffer }

/** Per-pull credentials supplied by the caller (CRI AuthConfig). */
export interface PullAuth extends Credentials { serverAddress?: string }

class HttpStatusError extends Error {
  readonly status: number;
  constructor(status: number, message: string) { super(message); this.status = status; }
}

const sha256 = (b: Buffer) => "sha256:" + sha256Hex(b);
/**
 * The node:crypto algorithm for a descriptor's or reference's digest. A digest in any other
 * algorithm, or malformed, cannot be verified, so it is refused naming the digest.
 */
export function digestAlgorithm(digest: string, what: string): string {
  if (!isDigest(digest)) {
    throw invalidArgument(`${what}: digest ${JSON.stringify(digest.slice(0, 200))} is not a sha256 or sha512 digest berth can verify`);
  }
  return digest.slice(0, digest.indexOf(":"));
}

/** Whether `body` has `digest`, computed with the digest's own algorithm. */
export function matchesDigest(body: Buffer, digest: string, what: string): boolean {
  const alg = digestAlgorithm(digest, what);
  return `${alg}:${nodeCrypto().createHash(alg).update(body).digest("hex")}` === digest;
}
const transient = (err: unknown) =>
  !(err instanceof HttpStatusError) || err.status >= 500 || err.status === 429 || err.status === 408;

export class RegistryClient {
  #opts: ClientOptions;
  #tokens = new TokenCache();
  /** Last auth challenge seen per origin, so later requests authenticate up front. */
  #challenges = new Map<string, { scheme: string; params: Record<string, string> }>();
  #log: Logger;

  constructor(opts: ClientOptions) {
    this.#opts = opts;
    this.#log = opts.log;
  }

  async #credentials(ref: Reference, host: RegistryHost, auth?: PullAuth): Promise<Credentials | undefined> {
    const authority = new URL(host.base).host;
    const registry = defaultRegistryHost(ref.domain);
    if (auth) {
      // The pull's own credentials go only to the registry itself (the default host or the
      // hosts.toml `server`), never to a mirror: a mirror gets credentials only from the
      // docker config.json entry for its own host. A server_address naming some other
      // registry keeps them from this one too.
      const server = auth.serverAddress ? auth.serverAddress.replace(/^[a-z]+:\/\//i, "").split("/")[0]!.toLowerCase() : "";
      const isRegistry = host.isServer || authority === registry || authority === ref.domain;
      const forThisRegistry = server === "" || [authority, registry, ref.domain].some((h) => sameRegistry(server, h));
      if (isRegistry && forThisRegistry) {
        const c = normaliseCredentials(auth);
        if (c) return c;
      }
    }
    if (this.#opts.authFile) {
      return (await credentialsFromDockerConfig(this.#opts.authFile, authority)) ??
        (authority === registry ? await credentialsFromDockerConfig(this.#opts.authFile, ref.domain) : undefined);
    }
    return undefined;
  }

  /** Authorization header for a request to `origin` given its last challenge, or undefined. */
  async #authorization(origin: string, scope: string, host: RegistryHost, creds: Credentials | undefined, force: boolean): Promise<string | undefined> {
    const ch = this.#challenges.get(origin);
    if (!ch) return undefined;
    if (ch.scheme === "basic") return creds && (creds.username || creds.password) ? basicHeader(creds) : undefined;
    if (ch.scheme !== "bearer") return undefined;
    if (creds?.registryToken) return `Bearer ${creds.registryToken}`;
    const realm = ch.params.realm;
    if (!realm) return undefined;
    const service = ch.params.service ?? "";
    const key = `${realm}|${service}|${scope}|${credentialKey(creds)}`;
    if (force) this.#tokens.delete(key);
    const cached = this.#tokens.get(key);
    if (cached) return `Bearer ${cached}`;
    const token = await this.#fetchToken(realm, service, scope, host, creds);
    this.#tokens.set(key, token.token, token.expiresIn, token.issuedAt);
    return `Bearer ${token.token}`;
  }

  async #fetchToken(realm: string, service: string, scope: string, host: RegistryHost, creds: Credentials | undefined) {
    let url: URL;
    try { url = new URL(realm); } catch (err) { throw unavailable(`registry ${new URL(host.base).host} sent an invalid token realm`, err); }
    const agent = await agentFor(url, host);
    const what = `token endpoint ${url.origin}${url.pathname}`;
    let res: IncomingMessage;
    if (creds?.identityToken) {
      const form = new URLSearchParams({ grant_type: "refresh_token", refresh_token: creds.identityToken, client_id: "berth", ...(service ? { service } : {}), scope });
      res = await request(url, {
        method: "POST", agent, body: form.toString(), stallTimeoutMs: this.#opts.stallTimeoutMs, stallMessage: `${what} stalled`,
        headers: { "content-type": "application/x-www-form-urlencoded" },
      });
    } else {
      if (service) url.searchParams.set("service", service);
      url.searchParams.set("scope", scope);
      const headers: Record<string, string> = {};
      if (creds && (creds.username || creds.password)) headers.authorization = basicHeader(creds);
      res = await request(url, { agent, headers, stallTimeoutMs: this.#opts.stallTimeoutMs, stallMessage: `${what} stalled` });
    }
    const body = await readBody(res, 1 << 20, what);
    if (res.statusCode === 401 || res.statusCode === 403) {
      throw new BerthError(Code.UNAUTHENTICATED, `${what} refused the credentials for scope ${scope} (http ${res.statusCode})`);
    }
    if (res.statusCode !== 200) throw new HttpStatusError(res.statusCode ?? 0, `${what} answered http ${res.statusCode}`);
    const tok = parseTokenResponse(body.toString("utf8"));
    if (!tok) throw unavailable(`${what} answered without a token`);
    return tok;
  }

  /**
   * Sends GET `path` (relative to the host's /v2 base) with auth, handling one 401 challenge
   * and following redirects (dropping Authorization when the origin changes).
   */
  async #get(ref: Reference, host: RegistryHost, path: string, headers: Record<string, string>, auth: PullAuth | undefined, what: string): Promise<IncomingMessage> {
    const creds = await this.#credentials(ref, host, auth);
    const scope = `repository:${ref.path}:pull`;
    const base = new URL(host.base);
    const origin = base.origin;
    let forced = false;
    for (let round = 0; round < 2; round++) {
      const authz = await this.#authorization(origin, scope, host, creds, forced);
      let url = new URL(host.base + path);
      // hosts.toml headers first: berth's own (accept, range, user-agent, authorization) win.
      let h = requestHeaders(host, headers, authz);
      for (let hop = 0; ; hop++) {
        const agent = await agentFor(url, host);
        this.#log.debug("registry request", { url: `${url.origin}${url.pathname}`, range: h.range });
        const res = await request(url, { agent, headers: h, dialTimeoutMs: host.dialTimeoutMs, stallTimeoutMs: this.#opts.stallTimeoutMs, stallMessage: `registry ${url.host} stalled for ${this.#opts.stallTimeoutMs} ms on ${what}` });
        const status = res.statusCode ?? 0;
        if (status >= 300 && status < 400 && res.headers.location && hop < MAX_REDIRECTS) {
          discard(res);
          const next = new URL(res.headers.location, url);
          h = redirectHeaders(url, next, h, Object.keys(host.headers), Object.keys(headers));
          url = next;
          continue;
        }
        if (status === 401 && round === 0 && url.origin === origin) {
          const header = res.headers["www-authenticate"];
          discard(res);
          const challenges = parseWwwAuthenticate(Array.isArray(header) ? header.join(", ") : header ?? "");
          const ch = challenges.find((c) => c.scheme === "bearer") ?? challenges.find((c) => c.scheme === "basic");
          if (!ch) throw new BerthError(Code.UNAUTHENTICATED, `registry ${base.host} requires authentication for ${what} with an unsupported scheme`);
          const prev = this.#challenges.get(origin);
          this.#challenges.set(origin, ch);
          forced = !!prev && prev.scheme === ch.scheme && !!authz;
          if (forced && ch.scheme === "basic") {
            throw new BerthError(Code.UNAUTHENTICATED, `registry ${base.host} refused the credentials for ${what} (http 401)`);
          }
          if (ch.scheme === "basic" && !(creds && (creds.username || creds.password))) {
            throw new BerthError(Code.UNAUTHENTICATED, `registry ${base.host} requires credentials for ${what}`);
          }
          break;
        }
        if (status === 401 || status === 403) {
          discard(res);
          throw new BerthError(Code.UNAUTHENTICATED, `registry ${base.host} refused access to ${what} (http ${status})`);
        }
        return res;
      }
    }
    throw new BerthError(Code.UNAUTHENTICATED, `registry ${base.host} refused access to ${what}`);
  }

  async #hosts(ref: Reference, cap: "pull" | "resolve"): Promise<RegistryHost[]> {
    const all = await loadHosts(this.#opts.hostsDir, ref.domain);
    const hosts = all.filter((h) => h[cap]);
    if (!hosts.length) throw unavailable(`no registry host for ${ref.domain} has the ${cap} capability`);
    return hosts;
  }

  /** Runs `fn` against each host in order with retries; a failing host falls through to the next. */
  async #eachHost<T>(ref: Reference, cap: "pull" | "resolve", what: string, fn: (h: RegistryHost) => Promise<T>): Promise<T> {
    const hosts = await this.#hosts(ref, cap);
    const attempts = this.#opts.attempts ?? 5;
    let last: unknown;
    let allNotFound = true;
    for (const host of hosts) {
      for (let attempt = 0; attempt < attempts; attempt++) {
        try {
          return await fn(host);
        } catch (err) {
          last = err;
          const hostName = new URL(host.base).host;
          if (!(err instanceof HttpStatusError && err.status === 404)) allNotFound = false;
          this.#log.debug("registry host failed", { host: hostName, what, attempt, error: (err as Error).message });
          if (err instanceof BerthError && err.code !== Code.UNAVAILABLE) break;
          if (!transient(err)) break;
          // A mirror that is down or failing is not retried as hard as the registry itself.
          if (!host.isServer && attempt >= 1) break;
          if (attempt + 1 < attempts) await sleep((this.#opts.backoffMs ?? 200) * 2 ** attempt);
        }
      }
    }
    if (allNotFound) throw notFound(`${what} not found`);
    if (last instanceof BerthError) throw last;
    throw unavailable(`${what}: ${describe(last)}`, last);
  }

  /** Resolves a reference (tag or digest) to its manifest, verified. */
  async resolve(ref: Reference, auth?: PullAuth): Promise<ManifestResult> {
    const what = `manifest ${formatReference(ref)}`;
    const target = ref.digest ?? ref.tag!;
    if (ref.digest) digestAlgorithm(ref.digest, what);
    return this.#eachHost(ref, ref.digest ? "pull" : "resolve", what, (h) => this.#manifestFrom(h, ref, target, auth, what));
  }

  /** Fetches a manifest by digest, verified. */
  async fetchManifest(ref: Reference, desc: Descriptor, auth?: PullAuth): Promise<ManifestResult> {
    const what = `manifest ${ref.domain}/${ref.path}@${desc.digest}`;
    digestAlgorithm(desc.digest, what); // before any request: an unverifiable child is refused, not fetched
    const m = await this.#eachHost(ref, "pull", what, (h) => this.#manifestFrom(h, ref, desc.digest, auth, what));
    if (m.size !== desc.size) throw unavailable(`${what} has size ${m.size}, the index says ${desc.size}`);
    return m;
  }

  async #manifestFrom(host: RegistryHost, ref: Reference, target: string, auth: PullAuth | undefined, what: string): Promise<ManifestResult> {
    const res = await this.#get(ref, host, `/${ref.path}/manifests/${target}`, { accept: MANIFEST_ACCEPT }, auth, what);
    if (res.statusCode !== 200) {
      discard(res);
      throw new HttpStatusError(res.statusCode ?? 0, `registry ${new URL(host.base).host} answered http ${res.statusCode} for ${what}`);
    }
    const body = await readBody(res, MANIFEST_LIMIT, what);
    // The content store keys manifests by sha256; a digest target (top-level or an index's
    // child) is checked with its own algorithm, so a sha512 digest pins the content too.
    const digest = sha256(body);
    if (target !== ref.tag && !matchesDigest(body, target, what)) {
      throw unavailable(`${what} from ${new URL(host.base).host} does not match its digest ${target} (the body has ${digest})`);
    }
    const mediaType = String(res.headers["content-type"] ?? "");
    return { digest, mediaType, size: body.length, body };
  }

  /** Fetches a small blob (config) into memory, verified. */
  async fetchSmallBlob(ref: Reference, desc: Descriptor, auth?: PullAuth): Promise<Buffer> {
    const what = `blob ${desc.digest} of ${ref.domain}/${ref.path}`;
    const chunks: Buffer[] = [];
    for await (const c of this.blobStream(ref, desc, auth)) chunks.push(c);
    const body = Buffer.concat(chunks);
    if (body.length !== desc.size || !matchesDigest(body, desc.digest, what)) throw unavailable(`${what} does not match its digest or size`);
    return body;
  }

  /**
   * What another process needs to GET a blob by itself (openDirectBlob): the URL on the first
   * host that pulls for `ref`, that host's headers and TLS settings, and the authorization berth
   * holds for the repository (none before its registry has challenged: then a 401 sends the
   * download back to blobStream, which answers the challenge).
   */
  async directBlob(ref: Reference, desc: Descriptor, auth?: PullAuth): Promise<DirectBlob> {
    digestAlgorithm(desc.digest, `blob ${desc.digest} of ${ref.domain}/${ref.path}`);
    const host = (await this.#hosts(ref, "pull"))[0]!;
    const creds = await this.#credentials(ref, host, auth);
    const authz = await this.#authorization(new URL(host.base).origin, `repository:${ref.path}:pull`, host, creds, false);
    return {
      url: host.base + blobPath(ref, desc.digest),
      headers: requestHeaders(host, {}, authz),
      hostHeaders: Object.keys(host.headers),
      tls: { skipVerify: host.skipVerify, ca: host.ca },
      dialTimeoutMs: host.dialTimeoutMs,
      stallTimeoutMs: this.#opts.stallTimeoutMs,
      size: desc.size,
      digest: desc.digest,
    };
  }

  /**
   * Streams a blob's bytes. Transient failures (errors, stalls, 5xx) are retried with backoff,
   * resuming with a Range request from the last byte received. Stops at `desc.size` bytes and
   * fails if the registry sends more or fewer. Digest verification is the consumer's job.
   * `firstHostTried`: an unpack process's own download (directBlob) already failed once on the
   * first host, which counts as an attempt there (a mirror that is down costs no extra wait).
   */
  async *blobStream(ref: Reference, desc: Descriptor, auth?: PullAuth, startOffset = 0, firstHostTried = false): AsyncGenerator<Buffer> {
    const what = `blob ${desc.digest}`;
    digestAlgorithm(desc.digest, `${what} of ${ref.domain}/${ref.path}`);
    const hosts = await this.#hosts(ref, "pull");
    const attempts = this.#opts.attempts ?? 5;
    let offset = startOffset;
    let last: unknown;
    let allNotFound = true;
    for (const host of hosts) {
      const hostName = new URL(host.base).host;
      // The attempt another process made on the first host (directBlob) counts as its first.
      for (let attempt = firstHostTried && host === hosts[0] && attempts > 1 ? 1 : 0; attempt < attempts; attempt++) {
        const before = offset;
        try {
          const headers: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {};
          const res = await this.#get(ref, host, blobPath(ref, desc.digest), headers, auth, `${what} of ${ref.domain}/${ref.path}`);
          const status = res.statusCode ?? 0;
          if (status !== 200 && status !== 206) {
            discard(res);
            throw new HttpStatusError(status, `registry ${hostName} answered http ${status} for ${what}`);
          }
          let skip = status === 200 ? offset : 0; // the server ignored Range: skip what we have
          try {
            for await (const chunk of res as AsyncIterable<Buffer>) {
              let c = chunk;
              if (skip > 0) {
                if (c.length <= skip) { skip -= c.length; continue; }
                c = c.subarray(skip);
                skip = 0;
              }
              if (offset + c.length > desc.size) throw new BerthError(Code.UNAVAILABLE, `registry ${hostName} sent more than ${desc.size} bytes for ${what}`);
              offset += c.length;
              yield c;
            }
          } catch (err) {
            res.destroy();
            throw err;
          }
          if (offset !== desc.size) throw new Error(`connection closed after ${offset} of ${desc.size} bytes`);
          return;
        } catch (err) {
          last = err;
          if (!(err instanceof HttpStatusError && err.status === 404)) allNotFound = false;
          // A mirror that wants credentials it was not given falls through to the next host.
          if (err instanceof BerthError && err.code === Code.UNAUTHENTICATED && !host.isServer) break;
          if (err instanceof BerthError && err.code !== Code.UNAVAILABLE) throw err;
          if (err instanceof BerthError) break;
          this.#log.info("blob download interrupted, retrying", { host: hostName, digest: desc.digest, offset, attempt, error: (err as Error).message });
          if (!transient(err)) break;
          if (offset > before) attempt = -1; // progress resets the attempt budget
          if (!host.isServer && attempt >= 1 && offset === before) break;
          if (attempt + 1 < attempts) await sleep((this.#opts.backoffMs ?? 200) * 2 ** attempt);
        }
      }
    }
    if (allNotFound && offset === 0) throw notFound(`${what} of ${ref.domain}/${ref.path} not found`);
    if (last instanceof StallError) throw unavailable(last.message, last);
    if (last instanceof BerthError) throw last;
    throw unavailable(`downloading ${what} from ${ref.domain}/${ref.path} failed: ${describe(last)}`, last);
  }
}

const DOCKER_HUB_NAMES = new Set(["docker.io", "index.docker.io", "registry-1.docker.io"]);
/** Whether two registry host names name the same registry (docker hub has three names). */
function sameRegistry(a: string, b: string): boolean {
  const x = a.toLowerCase(), y = b.toLowerCase();
  return x === y || (DOCKER_HUB_NAMES.has(x) && DOCKER_HUB_NAMES.has(y));
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}
