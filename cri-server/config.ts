// berthd configuration: TOML at /etc/berth/berth.toml (or --config FILE).
// Every key is optional; DEFAULTS documents them. Unknown keys, wrong types and
// impossible values are refused with the file, key and value named.
import { readFileSync } from "node:fs";
import { parse as parseToml, stringify as stringifyToml } from "smol-toml";
import { MAX_PINNED_GLOBS, pinnedGlobProblem } from "../image-service/images/pinned.ts";

export interface RuntimeHandlerConfig {
  /** Path or name of the OCI runtime binary (runc, crun). */
  binary: string;
  /** The runtime's --root state directory. */
  root: string;
}

export interface Config {
  /** Persistent state: images, content, snapshots, sandbox and container records. */
  root: string;
  /** Runtime state: sockets, pinned namespaces, exit files, bundles. */
  state: string;
  grpc: { address: string };
  registry: {
    /** Directory of containerd-compatible <host>/hosts.toml files. */
    config_path: string;
    /** Docker config.json with registry credentials ("" for none). */
    auth_file: string;
    /** Layers downloaded in parallel per pull. */
    max_concurrent_downloads: number;
    /** Seconds without progress after which a pull fails. */
    stall_timeout: number;
  };
  image: {
    /** Most decompressed (tar) bytes one image layer may unpack to; a pull over it fails naming this key. */
    max_layer_bytes: number;
    /** Most entries (files, dirs, links, nodes, implied parent dirs) one image layer may create. */
    max_layer_entries: number;
    /** Globs ("*", "?") of image names, digests or ids reported pinned, so kubelet's image GC keeps them. */
    pinned_images: string[];
    /** containers-policy.json checked on every pull; "" turns signature verification off. */
    signature_policy: string;
    /** Directory of <pod namespace>.json policies that replace signature_policy for pulls made for that namespace; "" for none. */
    signature_policy_dir: string;
    /** registries.d directory: where signatures live (lookaside, use-sigstore-attachments). */
    registries_d: string;
  };
  cni: {
    conf_dir: string;
    bin_dirs: string[];
    /** Seconds a CNI plugin may run before it is killed. */
    plugin_timeout: number;
  };
  runtime: {
    default_handler: string;
    handlers: Record<string, RuntimeHandlerConfig>;
    /** conmon binary. */
    conmon: string;
    /** The per-container monitor: "berth" (berth's own berth-monitor, next to io_helper, built by
     *  hack/build-helpers.sh: conmon's contract in a static binary of under 1 MB RSS) or "conmon"
     *  (the `conmon` binary above, about 2.6 MB RSS per container). */
    monitor: "berth" | "conmon";
    /** Where each conmon runs, out of berthd's cgroup (so a service stop does not kill it): "pod" puts it in
     *  `<pod cgroup parent>/berth-conmon-<id>`; any other value is a cgroupfs path from the hierarchy root
     *  (e.g. "berth-conmon"; outside systemd's slices, which systemd manages) shared by every conmon. */
    conmon_cgroup: string;
    /** berth's own small I/O helper (pty exec, conmon attach, netns port-forward), built by hack/setup.sh. */
    io_helper: string;
    /** Seccomp profile when a pod or container sets none: "" (unconfined, as the CRI default) or "RuntimeDefault". */
    seccomp_default: string;
    /** Size of the per-pod /dev/shm tmpfs (bytes). */
    shm_size: number;
    /** Seconds CreateContainer/RunPodSandbox results are kept for a kubelet retry. */
    create_cache_ttl: number;
    /** Seconds an OCI runtime create/start/update may run before it is killed with its process group (state, kill, delete: at most 30). */
    runtime_timeout: number;
    /** Seconds ExecSync keeps reading output after the exec'd process exits (a background child may hold the pipes). */
    exec_drain_timeout: number;
    /** A pod that does not share a PID namespace (pid mode CONTAINER or NODE) runs no infra process: its IPC and UTS
     *  namespaces are pinned as files (berth-mount pin-ns). false: every pod gets a catatonit infra process. */
    drop_infra: boolean;
  };
  stream: {
    address: string;
    /** 0 picks a free port. */
    port: number;
    tls_cert: string;
    tls_key: string;
    /** Seconds a streaming URL stays valid. */
    token_ttl: number;
    /** Seconds an idle streaming session is kept open. */
    idle_timeout: number;
    /** Largest inflated SPDY header block a streaming client may send (bytes). */
    max_header_bytes: number;
  };
  cdi: {
    /** Directories of CDI device specs (JSON or YAML); a device in a later directory replaces one in an earlier. */
    spec_dirs: string[];
  };
  metrics: { address: string };
  tracing: { endpoint: string; service_name: string };
  log: { level: "debug" | "info" | "warn" | "error" };
}

export const DEFAULT_CONFIG_PATH = "/etc/berth/berth.toml";

export function defaultConfig(): Config {
  return {
    root: "/var/lib/berth",
    state: "/run/berth",
    grpc: { address: "/run/berth/berth.sock" },
    registry: { config_path: "/etc/berth/certs.d", auth_file: "", max_concurrent_downloads: 3, stall_timeout: 60 },
    // Real layers reach ~10-20 GiB unpacked (CUDA/ML images) and a few hundred thousand files.
    image: { max_layer_bytes: 32 * 1024 ** 3, max_layer_entries: 1_000_000, pinned_images: [], signature_policy: "", signature_policy_dir: "", registries_d: "/etc/containers/registries.d" },
    cni: { conf_dir: "/etc/cni/net.d", bin_dirs: ["/opt/cni/bin", "/usr/lib/cni"], plugin_timeout: 60 },
    runtime: {
      default_handler: "runc",
      handlers: {
        runc: { binary: "runc", root: "/run/berth/runc" },
        crun: { binary: "crun", root: "/run/berth/crun" },
      },
      conmon: "conmon",
      monitor: "berth",
      conmon_cgroup: "pod",
      io_helper: "/usr/local/libexec/berth/berth-io",
      seccomp_default: "",
      shm_size: 64 * 1024 * 1024,
      create_cache_ttl: 600,
      runtime_timeout: 120,
      exec_drain_timeout: 1,
      drop_infra: true,
    },
    stream: { address: "127.0.0.1", port: 0, tls_cert: "", tls_key: "", token_ttl: 60, idle_timeout: 4 * 3600, max_header_bytes: 65536 },
    cdi: { spec_dirs: ["/etc/cdi", "/var/run/cdi"] },
    metrics: { address: "" },
    tracing: { endpoint: "", service_name: "berth" },
    log: { level: "info" },
  };
}

export class ConfigError extends Error {
  constructor(message: string) { super(message); this.name = "ConfigError"; }
}

type Check = (v: unknown) => string | undefined; // returns a problem, or undefined when fine

const isAbs = (v: unknown) => typeof v === "string" && v.startsWith("/");
const checks: Record<string, Check> = {
  "root": (v) => isAbs(v) ? undefined : "must be an absolute path",
  "state": (v) => isAbs(v) ? undefined : "must be an absolute path",
  "grpc.address": (v) => isAbs(v) ? undefined : "must be an absolute unix socket path",
  "registry.max_concurrent_downloads": (v) => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 64 ? undefined : "must be an integer from 1 to 64",
  "registry.stall_timeout": (v) => typeof v === "number" && v > 0 ? undefined : "must be a positive number of seconds",
  "image.max_layer_bytes": (v) => Number.isSafeInteger(v) && (v as number) >= 1024 ? undefined : "must be an integer of bytes, at least 1024",
  "image.pinned_images": (v) => {
    const list = v as string[];
    if (list.length > MAX_PINNED_GLOBS) return `must have at most ${MAX_PINNED_GLOBS} entries`;
    for (const g of list) { const p = pinnedGlobProblem(g); if (p) return `entry ${JSON.stringify(g.slice(0, 80))} ${p}`; }
    return undefined;
  },
  "image.max_layer_entries": (v) => Number.isSafeInteger(v) && (v as number) >= 1 ? undefined : "must be a positive integer",
  "image.signature_policy": (v) => v === "" || isAbs(v) ? undefined : 'must be "" or an absolute path',
  "image.signature_policy_dir": (v) => v === "" || isAbs(v) ? undefined : 'must be "" or an absolute path',
  "image.registries_d": (v) => isAbs(v) ? undefined : "must be an absolute path",
  "cni.plugin_timeout": (v) => typeof v === "number" && v > 0 ? undefined : "must be a positive number of seconds",
  "runtime.conmon_cgroup": (v) => v === "pod" || (typeof v === "string" && v.length <= 255 && /^\/?[A-Za-z0-9_][A-Za-z0-9_.@-]*(\/[A-Za-z0-9_][A-Za-z0-9_.@-]*)*$/.test(v))
    ? undefined : 'must be "pod" or a cgroup path from the hierarchy root (letters, digits, "_.@-" and "/", no ".." or empty parts, at most 255 characters)',
  "runtime.monitor": (v) => v === "berth" || v === "conmon" ? undefined : 'must be "berth" or "conmon"',
  "runtime.io_helper": (v) => isAbs(v) ? undefined : "must be an absolute path",
  "runtime.seccomp_default": (v) => ["", "RuntimeDefault", "Unconfined"].includes(v as string) ? undefined : 'must be "", "RuntimeDefault" or "Unconfined"',
  "runtime.exec_drain_timeout": (v) => typeof v === "number" && v >= 0 && v <= 60 ? undefined : "must be a number of seconds from 0 to 60",
  "runtime.runtime_timeout": (v) => typeof v === "number" && v > 0 && v <= 3600 ? undefined : "must be a positive number of seconds, at most 3600",
  "runtime.shm_size": (v) => Number.isInteger(v) && (v as number) > 0 && (v as number) <= 1e15 ? undefined : "must be a positive integer of bytes, at most 10^15",
  "stream.port": (v) => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 65535 ? undefined : "must be a port from 0 to 65535",
  "stream.token_ttl": (v) => typeof v === "number" && v > 0 ? undefined : "must be a positive number of seconds",
  "stream.idle_timeout": (v) => typeof v === "number" && v > 0 ? undefined : "must be a positive number of seconds",
  "stream.max_header_bytes": (v) => Number.isInteger(v) && (v as number) >= 1024 && (v as number) <= 16 * 1024 * 1024 ? undefined : "must be an integer of bytes from 1024 to 16777216",
  "cdi.spec_dirs": (v) => (v as string[]).length <= 16 && (v as string[]).every((d) => isAbs(d)) ? undefined : "must be at most 16 absolute paths",
  "log.level": (v) => ["debug", "info", "warn", "error"].includes(v as string) ? undefined : 'must be one of "debug", "info", "warn", "error"',
};

const typeOf = (v: unknown) => Array.isArray(v) ? "array" : v instanceof Date ? "date" : typeof v;
const show = (v: unknown) => JSON.stringify(v);

/** Merges `input` over `base`, refusing unknown keys and wrong types. Handler tables are open-ended. */
function merge(base: Record<string, unknown>, input: Record<string, unknown>, path: string, file: string): void {
  for (const [k, v] of Object.entries(input)) {
    const key = path ? `${path}.${k}` : k;
    if (path === "runtime.handlers") {
      if (typeOf(v) !== "object") throw new ConfigError(`${file}: key "${key}" must be a table, got ${show(v)}`);
      const h = v as Record<string, unknown>;
      const entry = { binary: k, root: "", ...(base[k] as object | undefined) } as Record<string, unknown>;
      merge(entry, h, key, file);
      base[k] = entry;
      continue;
    }
    if (!(k in base)) throw new ConfigError(`${file}: unknown key "${key}"`);
    const want = typeOf(base[k]);
    const got = typeOf(v);
    if (want !== got) throw new ConfigError(`${file}: key "${key}" must be of type ${want}, got ${got} ${show(v)}`);
    if (want === "object") merge(base[k] as Record<string, unknown>, v as Record<string, unknown>, key, file);
    else {
      if (want === "array" && (v as unknown[]).some((e) => typeof e !== "string")) throw new ConfigError(`${file}: key "${key}" must be an array of strings, got ${show(v)}`);
      const problem = checks[key]?.(v);
      if (problem) throw new ConfigError(`${file}: key "${key}" ${problem}, got ${show(v)}`);
      base[k] = v;
    }
  }
}

/** Parses TOML text into a full Config. `file` is only used in messages. */
export function parseConfig(text: string, file: string): Config {
  let raw: Record<string, unknown>;
  try {
    raw = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(`${file}: invalid TOML: ${(err as Error).message.split("\n")[0]}`);
  }
  const cfg = defaultConfig();
  // Keys derived from `state` follow it unless set explicitly.
  const rawState = raw["state"];
  if (typeof rawState === "string") {
    const grpc = raw["grpc"] as Record<string, unknown> | undefined;
    if (!grpc || grpc["address"] === undefined) cfg.grpc.address = `${rawState}/berth.sock`;
  }
  for (const h of Object.values(cfg.runtime.handlers)) h.root = "";
  merge(cfg as unknown as Record<string, unknown>, raw, "", file);
  for (const [name, h] of Object.entries(cfg.runtime.handlers)) if (h.root === "") h.root = `${cfg.state}/${name}`;
  if (!(cfg.runtime.default_handler in cfg.runtime.handlers)) {
    throw new ConfigError(`${file}: key "runtime.default_handler" names no handler in [runtime.handlers], got ${show(cfg.runtime.default_handler)}`);
  }
  if ((cfg.stream.tls_cert === "") !== (cfg.stream.tls_key === "")) {
    throw new ConfigError(`${file}: keys "stream.tls_cert" and "stream.tls_key" must be set together`);
  }
  return cfg;
}

/** Loads the config file. A missing file at the default path means all defaults; a missing explicit file is an error. */
export function loadConfig(file: string | undefined): Config {
  const path = file ?? DEFAULT_CONFIG_PATH;
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if (file === undefined && (err as NodeJS.ErrnoException).code === "ENOENT") return defaultConfig();
    throw new ConfigError(`${path}: cannot read config file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return parseConfig(text, path);
}

export const formatConfig = (cfg: Config): string => stringifyToml(cfg as unknown as Record<string, unknown>) + "\n";
