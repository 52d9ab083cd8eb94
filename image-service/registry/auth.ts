// Registry authentication: WWW-Authenticate parsing, credentials (CRI AuthConfig,
// docker config.json), bearer tokens cached per scope. Secrets never reach logs or errors.
import { readFile } from "node:fs/promises";

export interface Challenge { scheme: string; params: Record<string, string> }

/** Parses a WWW-Authenticate header value (possibly several challenges). */
export function parseWwwAuthenticate(header: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const s = header;
  const skipWs = () => { while (i < s.length && (s[i] === " " || s[i] === "\t")) i++; };
  while (i < s.length) {
    skipWs();
    while (s[i] === ",") { i++; skipWs(); }
    const m = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+/.exec(s.slice(i));
    if (!m) break;
    const scheme = m[0];
    i += scheme.length;
    const params: Record<string, string> = {};
    for (;;) {
      skipWs();
      const save = i;
      const k = /^([A-Za-z0-9!#$%&'*+.^_`|~-]+)\s*=\s*/.exec(s.slice(i));
      if (!k) { i = save; break; }
      i += k[0].length;
      let v = "";
      if (s[i] === '"') {
        i++;
        while (i < s.length && s[i] !== '"') {
          if (s[i] === "\\" && i + 1 < s.length) i++;
          v += s[i];
          i++;
        }
        i++;
      } else {
        const t = /^[^,\s]*/.exec(s.slice(i))![0];
        v = t;
        i += t.length;
      }
      params[k[1]!.toLowerCase()] = v;
      skipWs();
      if (s[i] === ",") {
        // A comma may separate params or start the next challenge: look ahead for "name=".
        const after = s.slice(i + 1);
        if (/^\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+\s*=/.test(after)) { i++; continue; }
        i++;
        break;
      }
      if (i >= s.length) break;
    }
    out.push({ scheme: scheme.toLowerCase(), params });
  }
  return out;
}

/** Credentials for one registry, any of the CRI AuthConfig forms. */
export interface Credentials {
  username?: string;
  password?: string;
  /** base64("user:password") */
  auth?: string;
  identityToken?: string;
  registryToken?: string;
}

/** Normalises `auth` into username/password. */
export function normaliseCredentials(c: Credentials | undefined): Credentials | undefined {
  if (!c) return undefined;
  const out: Credentials = {};
  if (c.username) out.username = c.username;
  if (c.password) out.password = c.password;
  if (c.auth && !c.username) {
    const dec = Buffer.from(c.auth, "base64").toString("utf8");
    const idx = dec.indexOf(":");
    if (idx > 0) { out.username = dec.slice(0, idx); out.password = dec.slice(idx + 1); }
  }
  if (c.identityToken) out.identityToken = c.identityToken;
  if (c.registryToken) out.registryToken = c.registryToken;
  return Object.keys(out).length ? out : undefined;
}

/** Loads credentials for `host` from a docker config.json ("auths"). */
export async function credentialsFromDockerConfig(file: string, host: string): Promise<Credentials | undefined> {
  let doc: { auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string; registrytoken?: string }> };
  try {
    doc = JSON.parse(await readFile(file, "utf8"));
  } catch {
    return undefined;
  }
  const auths = doc.auths ?? {};
  const keyHost = (k: string) => {
    const h = k.replace(/^[a-z]+:\/\//i, "").split("/")[0]!;
    return h === "index.docker.io" || h === "registry-1.docker.io" ? "docker.io" : h;
  };
  const want = host === "index.docker.io" || host === "registry-1.docker.io" ? "docker.io" : host;
  for (const [k, v] of Object.entries(auths)) {
    if (keyHost(k) !== want) continue;
    return normaliseCredentials({ username: v.username, password: v.password, auth: v.auth, identityToken: v.identitytoken, registryToken: v.registrytoken });
  }
  return undefined;
}

/** A stable, non-reversible key for credentials (used to separate token cache entries). */
export function credentialKey(c: Credentials | undefined): string {
  if (!c) return "anon";
  // Not a secret-preserving hash on purpose: only used as an in-memory map key, never logged.
  return `u:${c.username ?? ""}|p:${c.password?.length ?? 0}:${c.password ?? ""}|i:${c.identityToken ?? ""}|r:${c.registryToken ?? ""}`;
}

interface CachedToken { token: string; expiresAt: number }

/** Bearer tokens per realm/service/scope/credentials until they expire. */
export class TokenCache {
  #tokens = new Map<string, CachedToken>();
  #now: () => number;
  constructor(now: () => number = Date.now) { this.#now = now; }
  get(key: string): string | undefined {
    const t = this.#tokens.get(key);
    if (!t) return undefined;
    if (t.expiresAt <= this.#now()) { this.#tokens.delete(key); return undefined; }
    return t.token;
  }
  set(key: string, token: string, expiresInSec: number, issuedAt?: string) {
    const issued = issuedAt ? Date.parse(issuedAt) : NaN;
    const base = Number.isFinite(issued) && issued <= this.#now() ? issued : this.#now();
    // Refresh a little before expiry to avoid using a token that dies in flight.
    const ttl = Math.max(expiresInSec, 60) * 1000;
    this.#tokens.set(key, { token, expiresAt: base + ttl - Math.min(10_000, ttl / 10) });
  }
  delete(key: string) { this.#tokens.delete(key); }
}

/** Parses a token endpoint's JSON answer: `token` or `access_token`, `expires_in`, `issued_at`. */
export function parseTokenResponse(body: string): { token: string; expiresIn: number; issuedAt?: string } | undefined {
  let doc: Record<string, unknown>;
  try { doc = JSON.parse(body) as Record<string, unknown>; } catch { return undefined; }
  const token = typeof doc.token === "string" && doc.token ? doc.token : typeof doc.access_token === "string" ? doc.access_token : "";
  if (!token) return undefined;
  const expiresIn = typeof doc.expires_in === "number" && doc.expires_in > 0 ? doc.expires_in : 60;
  return { token, expiresIn, ...(typeof doc.issued_at === "string" ? { issuedAt: doc.issued_at } : {}) };
}

export const basicHeader = (c: Credentials) => `Basic ${Buffer.from(`${c.username ?? ""}:${c.password ?? ""}`).toString("base64")}`;
