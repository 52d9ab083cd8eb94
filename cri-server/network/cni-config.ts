// Loading CNI network configuration: the lexically first valid file in
// conf_dir with extension .conflist, .conf or .json. A single-plugin .conf
// (or .json) is wrapped into a one-plugin list, as libcni does.

import { readdirSync, readFileSync, statSync } from "node:fs";
import { extname, join } from "node:path";

export const SUPPORTED_CNI_VERSIONS = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] as const;

/** One plugin's config object as written in the file (type, capabilities and plugin-specific keys). */
export interface PluginConf {
  type: string;
  capabilities?: Record<string, boolean>;
  [key: string]: unknown;
}

export interface NetworkConfigList {
  name: string;
  cniVersion: string;
  disableCheck: boolean;
  plugins: PluginConf[];
  /** The file it came from. */
  file: string;
}

export const CONFIG_EXTENSIONS = [".conflist", ".conf", ".json"];

/** Config file names in conf_dir, lexically sorted (byte order, like Go's sort.Strings). */
export function listConfigFiles(confDir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(confDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT" || (err as NodeJS.ErrnoException).code === "ENOTDIR") return [];
    throw err;
  }
  return names
    .filter((n) => CONFIG_EXTENSIONS.includes(extname(n)) && !n.startsWith("."))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((n) => join(confDir, n));
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function checkPlugin(p: unknown, where: string): PluginConf {
  if (!isObject(p)) throw new Error(`${where} is not an object`);
  if (typeof p.type !== "string" || p.type === "") throw new Error(`${where} has no "type"`);
  if (p.type.includes("/") || p.type === "." || p.type === "..") throw new Error(`${where} has an invalid type "${p.type}"`);
  if (p.capabilities !== undefined && !isObject(p.capabilities)) throw new Error(`${where} "capabilities" is not an object`);
  return p as PluginConf;
}

function checkVersion(v: unknown): string {
  if (v === undefined || v === "") return "0.1.0"; // the spec's default for a missing cniVersion
  if (typeof v !== "string") throw new Error(`"cniVersion" is not a string`);
  if (!(SUPPORTED_CNI_VERSIONS as readonly string[]).includes(v)) throw new Error(`unsupported cniVersion "${v}"`);
  return v;
}

/** Parses one config file's bytes. Throws a plain Error describing what is wrong. */
export function parseNetworkConfig(file: string, text: string): NetworkConfigList {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`invalid JSON: ${(err as Error).message}`);
  }
  if (!isObject(raw)) throw new Error("not a JSON object");
  if (typeof raw.name !== "string" || raw.name === "") throw new Error(`no network "name"`);
  const cniVersion = checkVersion(raw.cniVersion);
  if (extname(file) === ".conflist" || Array.isArray(raw.plugins)) {
    if (!Array.isArray(raw.plugins) || raw.plugins.length === 0) throw new Error(`no "plugins"`);
    const plugins = raw.plugins.map((p, i) => checkPlugin(p, `plugin ${i}`));
    return { name: raw.name, cniVersion, disableCheck: raw.disableCheck === true, plugins, file };
  }
  const { name: _n, cniVersion: _v, ...plugin } = raw;
  return { name: raw.name, cniVersion, disableCheck: false, plugins: [checkPlugin(plugin, "plugin")], file };
}

export interface LoadResult {
  config?: NetworkConfigList;
  /** Files that were skipped and why (invalid ones are skipped, like CRI-O does). */
  skipped: { file: string; error: string }[];
}

/** Loads the lexically first valid config in confDir. */
export function loadNetworkConfig(confDir: string): LoadResult {
  const skipped: LoadResult["skipped"] = [];
  for (const file of listConfigFiles(confDir)) {
    try {
      if (!statSync(file).isFile()) continue;
      return { config: parseNetworkConfig(file, readFileSync(file, "utf8")), skipped };
    } catch (err) {
      skipped.push({ file, error: (err as Error).message });
    }
  }
  return { skipped };
}
