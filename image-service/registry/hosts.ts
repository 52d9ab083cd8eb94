// containerd-compatible registry host configuration: <config_path>/<host>/hosts.toml,
// falling back to <config_path>/_default/hosts.toml, then to the registry itself.
import { readFile } from "node:fs/promises";
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
  return [{ base: `${scheme}://${host}/v2`, pull: true, resolve: true, skipVerify: false, ca: [], isServer: true }];
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

function caps(v: unknown, where: string): { pull: boolean; resolve: boolean } {
  if (v === undefined) return { pull: true, resolve: true };
  if (!Array.isArray(v) || !v.every((c) => typeof c === "string")) throw invalidArgument(`${where}: capabilities must be a list of strings`);
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
  const hosts: RegistryHost[] = [];
  const table = (doc.host ?? {}) as Record<string, Record<string, unknown>>;
  if (typeof table !== "object") throw invalidArgument(`${where}: host must be a table`);
  for (const [url, h] of Object.entries(table)) {
    const w = `${where} [host.${JSON.stringify(url)}]`;
    hosts.push({
      base: toUrlBase(url, h.override_path === true, w),
      ...caps(h.capabilities, w),
      skipVerify: h.skip_verify === true,
      ca: caList(h.ca, dir, w),
      isServer: false,
    });
  }
  if (typeof doc.server === "string" || hosts.length === 0 || doc.server === undefined) {
    const server = typeof doc.server === "string"
      ? toUrlBase(doc.server, doc.override_path === true, where)
      : defaultHosts(domain)[0]!.base;
    hosts.push({ base: server, ...caps(doc.capabilities, where), skipVerify: doc.skip_verify === true, ca: caList(doc.ca, dir, where), isServer: true });
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
      text = await readFile(file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT" || (err as NodeJS.ErrnoException).code === "ENOTDIR") continue;
      throw invalidArgument(`cannot read ${file}: ${(err as Error).message}`, err);
    }
    return parseHostsToml(text, domain, dir, file);
  }
  return defaultHosts(domain);
}
