// Container Device Interface (CDI): device specs in JSON or YAML from a list of directories
// (later directories win, as in the CDI specification: /etc/cdi, then /var/run/cdi), a
// device named "vendor/class=name" resolved to its containerEdits and those of its spec,
// and the edits applied to an OCI spec: env, deviceNodes (with a device-cgroup allow rule),
// mounts, hooks and additional GIDs.
// Spec files are the administrator's or a device driver's, but are still bounded (size,
// count, aliases) and checked field by field; requested names come from CRI and are hostile.
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { invalidArgument } from "../foundation/errdefs.ts";
import { requirePackage } from "../foundation/builtins.ts";
import type { Hook, LinuxDevice, Mount, Spec } from "../bundle-spec/types.ts";

export const CDI_ANNOTATION_PREFIX = "cdi.k8s.io/";
export const MAX_SPEC_BYTES = 1 << 20;
export const MAX_SPEC_FILES = 512;
export const MAX_DEVICES_PER_CONTAINER = 128;
const MAX_ENTRIES = 1024;

const HOOK_NAMES = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"] as const;
type HookName = (typeof HOOK_NAMES)[number];

export interface CdiDeviceNode {
  path: string; hostPath?: string; type?: string; major?: number; minor?: number;
  fileMode?: number; permissions?: string; uid?: number; gid?: number;
}
export interface CdiMount { hostPath: string; containerPath: string; type?: string; options?: string[] }
export interface CdiHook { hookName: HookName; path: string; args?: string[]; env?: string[]; timeout?: number }
export interface ContainerEdits {
  env?: string[];
  deviceNodes?: CdiDeviceNode[];
  mounts?: CdiMount[];
  hooks?: CdiHook[];
  additionalGIDs?: number[];
}
export interface CdiDevice { name: string; containerEdits: ContainerEdits }
export interface CdiSpec { cdiVersion: string; kind: string; devices: CdiDevice[]; containerEdits?: ContainerEdits; file: string }

/** A requested device, found: its edits and its spec's. */
export interface ResolvedDevice { name: string; device: CdiDevice; spec: CdiSpec }

const KIND_RE = /^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}(\.[a-zA-Z0-9][a-zA-Z0-9._-]*)*\/[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$/;
const DEVICE_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9._:-]{0,127}$/;

/** Splits "vendor.com/class=name"; undefined when malformed. */
export function parseQualifiedName(q: string): { kind: string; name: string } | undefined {
  if (q.length > 256) return undefined;
  const eq = q.indexOf("=");
  if (eq < 0) return undefined;
  const kind = q.slice(0, eq);
  const name = q.slice(eq + 1);
  return KIND_RE.test(kind) && DEVICE_NAME_RE.test(name) ? { kind, name } : undefined;
}

/** The CDI devices a container asks for: CDI_devices, then the cdi.k8s.io/* annotations (comma-separated). */
export function requestedDevices(cdiDevices: { name: string }[], annotations: Record<string, string>): string[] {
  const out: string[] = [];
  for (const d of cdiDevices) out.push(d.name);
  for (const [k, v] of Object.entries(annotations)) {
    if (!k.startsWith(CDI_ANNOTATION_PREFIX)) continue;
    for (const n of v.split(",").map((s) => s.trim()).filter(Boolean)) out.push(n);
  }
  const unique = [...new Set(out)];
  if (unique.length > MAX_DEVICES_PER_CONTAINER) throw invalidArgument(`${unique.length} CDI devices requested, more than the limit of ${MAX_DEVICES_PER_CONTAINER}`);
  for (const n of unique) {
    if (!parseQualifiedName(n)) throw invalidArgument(`CDI device ${JSON.stringify(n.slice(0, 300))} is not a qualified name "vendor.com/class=name"`);
  }
  return unique;
}

// ---- loading -----------------------------------------------------------------------------

class SpecError extends Error {}
const fail = (file: string, what: string): never => { throw new SpecError(`${file}: ${what}`); };

function isObj(v: unknown): v is Record<string, unknown> { return typeof v === "object" && v !== null && !Array.isArray(v); }
const absPath = (file: string, field: string, v: unknown): string => {
  if (typeof v !== "string" || !v.startsWith("/") || v.includes("\0") || v.length > 4096) fail(file, `${field} must be an absolute path`);
  return v as string;
};
const strList = (file: string, field: string, v: unknown): string[] | undefined => {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.length > MAX_ENTRIES || v.some((s) => typeof s !== "string" || s.includes("\0"))) fail(file, `${field} must be a list of strings`);
  return v as string[];
};
const optInt = (file: string, field: string, v: unknown, max = 2 ** 32 - 1): number | undefined => {
  if (v === undefined || v === null) return undefined;
  if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > max) fail(file, `${field} must be an integer from 0 to ${max}`);
  return v as number;
};
const list = (file: string, field: string, v: unknown): unknown[] => {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.length > MAX_ENTRIES) fail(file, `${field} must be a list of at most ${MAX_ENTRIES} entries`);
  return v as unknown[];
};

function parseEdits(file: string, where: string, v: unknown): ContainerEdits {
  if (v === undefined || v === null) return {};
  if (!isObj(v)) return fail(file, `${where} must be a map`);
  const out: ContainerEdits = {};
  const env = strList(file, `${where}.env`, v["env"]);
  if (env) {
    if (env.some((e) => !/^[^=\s]+=/.test(e))) fail(file, `${where}.env entries must be KEY=value`);
    out.env = env;
  }
  out.deviceNodes = list(file, `${where}.deviceNodes`, v["deviceNodes"]).map((d, i) => {
    const f = `${where}.deviceNodes[${i}]`;
    if (!isObj(d)) return fail(file, `${f} must be a map`);
    const n: CdiDeviceNode = { path: absPath(file, `${f}.path`, d["path"]) };
    if (d["hostPath"] !== undefined) n.hostPath = absPath(file, `${f}.hostPath`, d["hostPath"]);
    if (d["type"] !== undefined) {
      if (!["c", "b", "u", "p"].includes(d["type"] as string)) fail(file, `${f}.type must be c, b, u or p`);
      n.type = d["type"] as string;
    }
    const major = optInt(file, `${f}.major`, d["major"]);
    const minor = optInt(file, `${f}.minor`, d["minor"]);
    const fileMode = optInt(file, `${f}.fileMode`, d["fileMode"], 0o7777);
    const uid = optInt(file, `${f}.uid`, d["uid"]);
    const gid = optInt(file, `${f}.gid`, d["gid"]);
    if (major !== undefined) n.major = major;
    if (minor !== undefined) n.minor = minor;
    if (fileMode !== undefined) n.fileMode = fileMode;
    if (uid !== undefined) n.uid = uid;
    if (gid !== undefined) n.gid = gid;
    if (d["permissions"] !== undefined) {
      if (typeof d["permissions"] !== "string" || !/^[rwm]{1,3}$/.test(d["permissions"])) fail(file, `${f}.permissions must be made of r, w and m`);
      n.permissions = d["permissions"] as string;
    }
    return n;
  });
  out.mounts = list(file, `${where}.mounts`, v["mounts"]).map((m, i) => {
    const f = `${where}.mounts[${i}]`;
    if (!isObj(m)) return fail(file, `${f} must be a map`);
    const o: CdiMount = { hostPath: absPath(file, `${f}.hostPath`, m["hostPath"]), containerPath: absPath(file, `${f}.containerPath`, m["containerPath"]) };
    if (o.containerPath.split("/").includes("..")) fail(file, `${f}.containerPath must not contain ".."`);
    if (m["type"] !== undefined) {
      if (typeof m["type"] !== "string" || !/^[a-z0-9_.-]{1,32}$/.test(m["type"])) fail(file, `${f}.type is not a filesystem type`);
      o.type = m["type"] as string;
    }
    const options = strList(file, `${f}.options`, m["options"]);
    if (options) o.options = options;
    return o;
  });
  out.hooks = list(file, `${where}.hooks`, v["hooks"]).map((h, i) => {
    const f = `${where}.hooks[${i}]`;
    if (!isObj(h)) return fail(file, `${f} must be a map`);
    if (!HOOK_NAMES.includes(h["hookName"] as HookName)) fail(file, `${f}.hookName must be one of ${HOOK_NAMES.join(", ")}`);
    const o: CdiHook = { hookName: h["hookName"] as HookName, path: absPath(file, `${f}.path`, h["path"]) };
    const args = strList(file, `${f}.args`, h["args"]);
    const env = strList(file, `${f}.env`, h["env"]);
    const timeout = optInt(file, `${f}.timeout`, h["timeout"], 3600);
    if (args) o.args = args;
    if (env) o.env = env;
    if (timeout !== undefined) o.timeout = timeout;
    return o;
  });
  const gids = list(file, `${where}.additionalGIDs`, v["additionalGIDs"]).map((g, i) => optInt(file, `${where}.additionalGIDs[${i}]`, g)!);
  if (gids.length) out.additionalGIDs = gids;
  return out;
}

// The YAML parser costs berthd about 12 MB of RSS once loaded: it is loaded (synchronously,
// through require, foundation/builtins.ts) the first time a YAML spec is read, not when berthd
// starts.
let yaml: typeof import("yaml") | undefined;
const loadYaml = (): typeof import("yaml") =>
  requirePackage<typeof import("yaml")>("yaml");
const parseYaml = (text: string, options: import("yaml").ParseOptions & import("yaml").DocumentOptions & import("yaml").ToJSOptions): unknown =>
  (yaml ??= loadYaml()).parse(text, options);

/** Parses and checks one spec file's text (JSON, or YAML for .yaml/.yml). */
export function parseSpec(text: string, file: string): CdiSpec {
  let raw: unknown;
  try {
    raw = /\.ya?ml$/.test(file) ? parseYaml(text, { maxAliasCount: 64, prettyErrors: false }) : JSON.parse(text);
  } catch (err) {
    return fail(file, `cannot parse: ${(err as Error).message.split("\n")[0]}`);
  }
  if (!isObj(raw)) return fail(file, "a CDI spec must be a map");
  if (typeof raw["cdiVersion"] !== "string" || !/^\d+\.\d+\.\d+$/.test(raw["cdiVersion"])) fail(file, "cdiVersion must be a version like 0.6.0");
  if (typeof raw["kind"] !== "string" || !KIND_RE.test(raw["kind"])) fail(file, 'kind must be "vendor.com/class"');
  const devices = list(file, "devices", raw["devices"]).map((d, i) => {
    if (!isObj(d)) return fail(file, `devices[${i}] must be a map`);
    if (typeof d["name"] !== "string" || !DEVICE_NAME_RE.test(d["name"])) fail(file, `devices[${i}].name is not a device name`);
    return { name: d["name"] as string, containerEdits: parseEdits(file, `devices[${i}].containerEdits`, d["containerEdits"]) };
  });
  if (!devices.length) fail(file, "a CDI spec must define at least one device");
  const spec: CdiSpec = { cdiVersion: raw["cdiVersion"] as string, kind: raw["kind"] as string, devices, file };
  if (raw["containerEdits"] !== undefined) spec.containerEdits = parseEdits(file, "containerEdits", raw["containerEdits"]);
  return spec;
}

export interface CdiRegistry {
  devices: Map<string, ResolvedDevice>;
  /** Spec files that were skipped, and why. */
  problems: string[];
}

/** Loads every *.json, *.yaml and *.yml spec in `dirs`; a device in a later directory replaces one in an earlier. */
export async function loadRegistry(dirs: string[]): Promise<CdiRegistry> {
  const devices = new Map<string, ResolvedDevice>();
  const problems: string[] = [];
  let files = 0;
  for (const dir of dirs) {
    let names: string[];
    try {
      names = (await readdir(dir)).filter((n) => /\.(json|ya?ml)$/.test(n) && !n.startsWith(".")).sort();
    } catch {
      continue; // a missing directory is normal
    }
    const seen = new Map<string, string>();
    for (const n of names) {
      if (++files > MAX_SPEC_FILES) {
        problems.push(`more than ${MAX_SPEC_FILES} spec files; the rest are ignored`);
        return { devices, problems };
      }
      const file = join(dir, n);
      try {
        const st = await stat(file);
        if (!st.isFile()) continue;
        // A spec's hooks run as root on the host: only root may write it.
        if (st.uid !== 0 || (st.mode & 0o022) !== 0) throw new SpecError(`${file}: not owned by root or writable by group or others; ignored`);
        if (st.size > MAX_SPEC_BYTES) throw new SpecError(`${file}: larger than ${MAX_SPEC_BYTES} bytes`);
        const spec = parseSpec(await readFile(file, "utf8"), file);
        for (const d of spec.devices) {
          const q = `${spec.kind}=${d.name}`;
          const other = seen.get(q);
          if (other) { problems.push(`${file}: device ${q} is also defined in ${other}; ignored`); continue; }
          seen.set(q, file);
          devices.set(q, { name: q, device: d, spec });
        }
      } catch (err) {
        problems.push(err instanceof SpecError ? err.message : `${file}: ${(err as Error).message}`);
      }
    }
  }
  return { devices, problems };
}

/** Resolves requested devices; INVALID_ARGUMENT names the first unknown one and the directories searched. */
export async function resolveDevices(dirs: string[], names: string[]): Promise<ResolvedDevice[]> {
  if (!names.length) return [];
  const reg = await loadRegistry(dirs);
  return names.map((n) => {
    const d = reg.devices.get(n);
    if (!d) {
      const why = reg.problems.length ? `; skipped spec files: ${reg.problems.slice(0, 5).join("; ")}` : "";
      throw invalidArgument(`unresolvable CDI device ${JSON.stringify(n)}: no spec in ${dirs.map((x) => JSON.stringify(x)).join(", ")} defines it${why}`);
    }
    return d;
  });
}

// ---- applying ------------------------------------------------------------------------------

/** Fills a device node's type, major and minor from the host node when the spec leaves them out. */
async function hostNode(n: CdiDeviceNode, file: string): Promise<LinuxDevice> {
  let { type, major, minor } = n;
  let fileMode = n.fileMode;
  if (type === undefined || major === undefined || minor === undefined || fileMode === undefined) {
    const p = n.hostPath ?? n.path;
    let st;
    try {
      st = await stat(p);
    } catch (err) {
      throw invalidArgument(`CDI device node ${p} (from ${file}) does not exist on the host: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, err);
    }
    if (!st.isCharacterDevice() && !st.isBlockDevice()) throw invalidArgument(`CDI device node ${p} (from ${file}) is not a device`);
    const rdev = st.rdev;
    type ??= st.isBlockDevice() ? "b" : "c";
    major ??= Number((BigInt(rdev) >> 8n) & 0xfffn | ((BigInt(rdev) >> 32n) & ~0xfffn));
    minor ??= Number((BigInt(rdev) & 0xffn) | ((BigInt(rdev) >> 12n) & ~0xffn));
    fileMode ??= st.mode & 0o777;
  }
  const d: LinuxDevice = { type: type!, path: n.path, major: major!, minor: minor!, fileMode };
  if (n.uid !== undefined) d.uid = n.uid;
  if (n.gid !== undefined) d.gid = n.gid;
  return d;
}

function mergeEnv(base: string[], extra: string[]): string[] {
  const out = new Map<string, string>();
  for (const e of [...base, ...extra]) out.set(e.slice(0, e.indexOf("=") < 0 ? e.length : e.indexOf("=")), e);
  return [...out.values()];
}

/** Applies the devices' edits, and each used spec's own edits once, to `spec`. */
export async function applyDevices(spec: Spec, devices: ResolvedDevice[]): Promise<void> {
  const edits: { edits: ContainerEdits; file: string }[] = [];
  const specsDone = new Set<CdiSpec>();
  for (const d of devices) {
    if (d.spec.containerEdits && !specsDone.has(d.spec)) {
      specsDone.add(d.spec);
      edits.push({ edits: d.spec.containerEdits, file: d.spec.file });
    }
    edits.push({ edits: d.device.containerEdits, file: d.spec.file });
  }
  for (const { edits: e, file } of edits) {
    if (e.env?.length && spec.process) spec.process.env = mergeEnv(spec.process.env ?? [], e.env);
    for (const n of e.deviceNodes ?? []) {
      const dev = await hostNode(n, file);
      spec.linux ??= {};
      spec.linux.devices = [...(spec.linux.devices ?? []).filter((x) => x.path !== dev.path), dev];
      spec.linux.resources ??= {};
      spec.linux.resources.devices = [...(spec.linux.resources.devices ?? []),
        { allow: true, type: dev.type, major: dev.major!, minor: dev.minor!, access: n.permissions ?? "rwm" }];
    }
    for (const m of e.mounts ?? []) {
      const mount: Mount = { destination: m.containerPath, source: m.hostPath, options: m.options ?? ["rbind", "rprivate"] };
      mount.type = m.type ?? "bind";
      spec.mounts = [...(spec.mounts ?? []).filter((x) => x.destination !== mount.destination), mount];
    }
    for (const h of e.hooks ?? []) {
      const hook: Hook = { path: h.path, ...(h.args ? { args: h.args } : {}), ...(h.env ? { env: h.env } : {}), ...(h.timeout !== undefined ? { timeout: h.timeout } : {}) };
      spec.hooks ??= {};
      spec.hooks[h.hookName] = [...(spec.hooks[h.hookName] ?? []), hook];
    }
    if (e.additionalGIDs?.length && spec.process) {
      const gids = new Set([...(spec.process.user.additionalGids ?? []), ...e.additionalGIDs]);
      spec.process.user.additionalGids = [...gids];
    }
  }
}
