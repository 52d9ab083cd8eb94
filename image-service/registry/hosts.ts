// containerd-compatible registry host configuration: <config_path>/<host>/hosts.toml,
// falling back to <config_path>/_default/hosts.toml, then to the registry itself.
//
// Keys (top level for the server, and in each [host."url"] table): server (top level only),
// capabilities, ca, skip_verify, override_path, header, dial_timeout. `client` (TLS client
// certificates) is not supported, and any key berth does not know is refused naming the file and
// the key, so a setting is never silently ignored.
import { BoundedReadError, readBoundedFile } from "../../oci-runtime/foundation/bounded-file.ts";
import path from "node:path";
import { parse as parseToml } from "smol-toml";
import { invalidArgument } from "../../oci-runtime/foundation/errdefs.ts";
import { defaultRegistryHost } from "../reference.ts";

export interface RegistryHost {
  /** Base URL of the API, including the "/v2" prefix (unless override_path). */
  base: string;
  pull: boolean;
  resolve: boolean;
  skipVerify: boolean;
  /** CA certificate file paths (absolute). */
  ca: string[];
  /** Extra request headers (lower-case names), from `header`. */
  headers: Record<string, string>;
  /** Connect timeout in ms from `dial_timeout` (0: none beyond the stall timeout). */
  dialTimeoutMs: number;
  /** True for the registry's own server (the last entry). */
  isServer: boolean;
}

const isLoopback = (host: string) => {
  const h = host.replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || /^127\./.test(h);
};

/** The entry used when no hosts.toml applies. */
export function defaultHosts(domain: string): RegistryHost[] {
  const host = defaultRegistryHost(domain);
  const scheme = isLoopback(host) ? "http" : "https";
  return [{ base: `${scheme}://${host}/v2`, pull: true, resolve: true, skipVerify: false, ca: [], headers: {}, dialTimeoutMs: 0, isServer: true }];
}

function toUrlBase(raw: string, overridePath: boolean, where: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `https://${raw}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch (err) {
    throw invalidArgument(`${where}: invalid host url ${JSON.stringify(raw)}`, err);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") throw invalidArgument(`${where}: host url ${JSON.stringify(raw)} must be http or https`);
  let p = u.pathname.replace(/\/+$/, "");
  if (!overridePath && !p.endsWith("/v2")) p += "/v2";
  return `${u.protocol}//${u.host}${p}`;
}

function caList(v: unknown, dir: string, where: string): string[] {
  if (v === undefined) return [];
  const list = Array.isArray(v) ? v : [v];
  return list.map((c) => {
    if (typeof c !== "string") throw invalidArgument(`${where}: ca must be a path or a list of paths`);
    return path.resolve(dir, c);
  });
}

/** Keys a host table (or the top level) may carry. */
const HOST_KEYS = new Set(["capabilities", "ca", "skip_verify", "override_path", "header", "dial_timeout"]);
const TOP_KEYS = new Set([...HOST_KEYS, "server", "host"]);
/** Keys containerd knows that berth refuses, with why. */
const UNSUPPORTED: Record<string, string> = { client: "TLS client certificates are not supported by berth" };

/** Largest hosts.toml read (a FIFO or device in its place is refused, never waited on). */
export const MAX_HOSTS_TOML_BYTES = 1024 * 1024;
export const MAX_HOST_HEADERS = 64;
export const MAX_HEADER_VALUE_BYTES = 8192;
/** Headers berth's HTTP client owns; a hosts.toml may not set them. */
const RESERVED_HEADERS = new Set(["host", "content-length", "transfer-encoding", "connection", "keep-alive", "proxy-connection", "upgrade", "te", "trailer", "range"]);
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Visible ASCII, spaces and tabs: no CR, LF or NUL (header injection). */
const FIELD_VALUE = /^[\t\x20-\x7e]*$/;

function checkKeys(table: Record<string, unknown>, allowed: Set<string>, where: string): void {
  for (const k of Object.keys(table)) {
    if (allowed.has(k)) continue;
    if (UNSUPPORTED[k]) throw invalidArgument(`${where}: key "${k}" is not supported: ${UNSUPPORTED[k]}`);
    throw invalidArgument(`${where}: unknown key ${JSON.stringify(k)} (berth knows ${[...allowed].sort().join(", ")})`);
  }
}

function bool(v: unknown, key: string, where: string): boolean {
  if (v === undefined) return false;
  if (typeof v !== "boolean") throw invalidArgument(`${where}: ${key} must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

/** `[host."url".header]`: name = "value" or name = ["v1", "v2"] (joined with ", "). */
function headerTable(v: unknown, where: string): Record<string, string> {
  if (v === undefined) return {};
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw invalidArgument(`${where}: header must be a table of name = "value"`);
  const entries = Object.entries(v as Record<string, unknown>);
  if (entries.length > MAX_HOST_HEADERS) throw invalidArgument(`${where}: header has ${entries.length} entries, the limit is ${MAX_HOST_HEADERS}`);
  const out: Record<string, string> = {};
  for (const [name, raw] of entries) {
    const shown = JSON.stringify(name.slice(0, 64));
    if (!TOKEN.test(name)) throw invalidArgument(`${where}: header name ${shown} is not a valid http header name`);
    const lower = name.toLowerCase();
    if (RESERVED_HEADERS.has(lower)) throw invalidArgument(`${where}: header ${shown} is set by berth and cannot be configured`);
    const values = Array.isArray(raw) ? raw : [raw];
    if (values.length === 0 || !values.every((x) => typeof x === "string")) throw invalidArgument(`${where}: header ${shown} must be a string or a list of strings`);
    const value = (values as string[]).join(", ");
    if (!FIELD_VALUE.test(value)) throw invalidArgument(`${where}: header ${shown} has a value with a control character (CR, LF, NUL, ...)`);
    if (Buffer.byteLength(value) > MAX_HEADER_VALUE_BYTES) throw invalidArgument(`${where}: header ${shown} is longer than ${MAX_HEADER_VALUE_BYTES} bytes`);
    out[lower] = out[lower] === undefined ? value : `${out[lower]}, ${value}`;
  }
  return out;
}

/** `dial_timeout`: a Go duration such as "500ms", "3s", "1m30s" (a number is seconds); at most 10 minutes. */
export function parseDialTimeout(v: unknown, where: string): number {
  if (v === undefined) return 0;
  let ms: number | undefined;
  if (typeof v === "number" && Number.isFinite(v) && v > 0) ms = v * 1000;
  else if (typeof v === "string" && /^(\d+(\.\d+)?(ms|s|m|h))+$/.test(v)) {
    const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
    ms = 0;
    for (const m of v.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) ms += Number(m[1]) * unit[m[2]!]!;
  }
  if (ms === undefined || ms <= 0 || ms > 600_000) throw invalidArgument(`${where}: dial_timeout must be a duration from 1ms to 10m such as "5s", got ${JSON.stringify(v)}`);
  return Math.ceil(ms);
}

function caps(v: unknown, where: string): { pull: boolean; resolve: boolean } {
  if (v === undefined) return { pull: true, resolve: true };
  if (!Array.isArray(v) || !v.every((c) => typeof c === "string")) throw invalidArgument(`${where}: capabilities must be a list of strings`);
  const bad = v.find((c) => c !== "pull" && c !== "resolve" && c !== "push");
  if (bad !== undefined) throw invalidArgument(`${where}: unknown capability ${JSON.stringify(bad)} (pull, resolve, push)`);
  return { pull: v.includes("pull"), resolve: v.includes("resolve") };
}

/** Parses one hosts.toml; `dir` resolves relative ca paths. Mirrors come first in file order, the server last. */
export function parseHostsToml(text: string, domain: string, dir: string, where = "hosts.toml"): RegistryHost[] {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    throw invalidArgument(`${where}: invalid toml: ${(err as Error).message.split("\n")[0]}`, err);
  }
  checkKeys(doc, TOP_KEYS, where);
  if (doc.server !== undefined && typeof doc.server !== "string") throw invalidArgument(`${where}: server must be a url string`);
  const hosts: RegistryHost[] = [];
  const table = (doc.host ?? {}) as Record<string, Record<string, unknown>>;
  if (typeof table !== "object" || table === null || Array.isArray(table)) throw invalidArgument(`${where}: host must be a table`);
  for (const [url, h] of Object.entries(table)) {
    const w = `${where} [host.${JSON.stringify(url)}]`;
    if (typeof h !== "object" || h === null || Array.isArray(h)) throw invalidArgument(`${w}: must be a table`);
    checkKeys(h, HOST_KEYS, w);
    hosts.push({
      base: toUrlBase(url, bool(h.override_path, "override_path", w), w),
      ...caps(h.capabilities, w),
      skipVerify: bool(h.skip_verify, "skip_verify", w),
      ca: caList(h.ca, dir, w),
      headers: headerTable(h.header, w),
      dialTimeoutMs: parseDialTimeout(h.dial_timeout, w),
      isServer: false,
    });
  }
  if (typeof doc.server === "string" || hosts.length === 0 || doc.server === undefined) {
    const server = typeof doc.server === "string"
      ? toUrlBase(doc.server, bool(doc.override_path, "override_path", where), where)
      : defaultHosts(domain)[0]!.base;
    hosts.push({
      base: server, ...caps(doc.capabilities, where), skipVerify: bool(doc.skip_verify, "skip_verify", where), ca: caList(doc.ca, dir, where),
      headers: headerTable(doc.header, where), dialTimeoutMs: parseDialTimeout(doc.dial_timeout, where), isServer: true,
    });
  }
  return hosts;
}

const dirName = (domain: string) => domain;

/** Loads the host list for a registry domain from `configDir` ("" disables host configuration). */
export async function loadHosts(configDir: string, domain: string): Promise<RegistryHost[]> {
  if (!configDir) return defaultHosts(domain);
  for (const d of [dirName(domain), "_default"]) {
    const dir = path.join(configDir, d);
    const file = path.join(dir, "hosts.toml");
    let text: string;
    try {
      text = (await readBoundedFile(file, MAX_HOSTS_TOML_BYTES)).toString("utf8");
    } catch (err) {
      if (err instanceof BoundedReadError && err.problem.kind === "missing") continue;
      throw invalidArgument(`${file} ${(err as Error).message}`, err);
    }
    return parseHostsToml(text, domain, dir, file);
  }
  return defaultHosts(domain);
}
