// One start-up probe for the mount features a runtime handler offers through berth:
// recursive read-only mounts (the handler's own "rro" mount option, or berth's own
// mount_setattr clone) and user namespaces (the handler creates/joins them, and berth
// can make idmapped mounts on its state and root filesystems and overlayfs over them).
import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { runCommand } from "../foundation/run-command.ts";
import type { RuntimeFeatures } from "../runtime/oci-runtime.ts";
import { MOUNT_HELPER_TIMEOUT_MS } from "./mount-helper.ts";

/** What the helper's probe found on one filesystem: "" when a check passed, else why it failed. */
export interface FsProbe {
  dir: string;
  idmap: string;
  rro: string;
  overlayIdmappedLower: string;
}

export interface MountFeatures {
  /** How Mount.recursive_read_only is applied: the handler's "rro" option, berth's own clone, or not at all. */
  recursiveReadOnly: "runtime" | "berth" | "none";
  userNamespaces: boolean;
  /** Why a feature is off (empty when both are on). */
  reasons: string[];
}

/** Runs `berth-mount probe` in a scratch directory under `parent` (removed afterwards). */
export async function probeFilesystem(helper: string, parent: string): Promise<FsProbe> {
  const out: FsProbe = { dir: parent, idmap: "not probed", rro: "not probed", overlayIdmappedLower: "not probed" };
  let scratch = "";
  try {
    scratch = await mkdtemp(join(parent, ".mount-probe-"));
    const r = await runCommand(helper, ["probe", scratch], { timeoutMs: MOUNT_HELPER_TIMEOUT_MS });
    if (r.code !== 0) {
      const why = r.spawnError ? `cannot run ${helper}: ${r.spawnError.message}` : (r.stderr.trim() || `exit status ${r.code}`);
      return { ...out, idmap: why, rro: why, overlayIdmappedLower: why };
    }
    for (const line of r.stdout.split("\n")) {
      const m = /^([a-z-]+) (ok|error: (.*))$/.exec(line.trim());
      if (!m) continue;
      const v = m[2] === "ok" ? "" : m[3]!;
      if (m[1] === "idmap") out.idmap = v;
      else if (m[1] === "rro") out.rro = v;
      else if (m[1] === "overlay-idmapped-lower") out.overlayIdmappedLower = v;
    }
    return out;
  } catch (err) {
    const why = (err as Error).message;
    return { ...out, idmap: why, rro: why, overlayIdmappedLower: why };
  } finally {
    if (scratch) await rm(scratch, { recursive: true, force: true }).catch(() => {});
  }
}

/** Combines a handler's `features` with the filesystem probes (pure). */
export function mountFeatures(handler: string, rt: RuntimeFeatures | undefined, rtError: string, probes: { state: FsProbe; root: FsProbe }): MountFeatures {
  const reasons: string[] = [];
  let recursiveReadOnly: MountFeatures["recursiveReadOnly"] = "none";
  if (rt?.mountOptions.includes("rro")) recursiveReadOnly = "runtime";
  else if (!probes.state.rro) recursiveReadOnly = "berth";
  else reasons.push(`recursive read-only mounts: ${handler} features lack "rro"${rtError ? ` (${rtError})` : ""} and mount_setattr on ${probes.state.dir} failed: ${probes.state.rro}`);
  let userNamespaces = true;
  const off = (why: string) => { userNamespaces = false; reasons.push(`user namespaces: ${why}`); };
  if (!rt?.namespaces?.includes("user")) off(`${handler} features do not list the "user" namespace${rtError ? ` (${rtError})` : ""}`);
  if (probes.state.idmap) off(`idmapped mounts fail on the state directory ${probes.state.dir}: ${probes.state.idmap}`);
  if (probes.root.idmap) off(`idmapped mounts fail on the root directory ${probes.root.dir}: ${probes.root.idmap}`);
  if (probes.root.overlayIdmappedLower) off(`overlayfs over an idmapped layer fails on ${probes.root.dir}: ${probes.root.overlayIdmappedLower}`);
  return { recursiveReadOnly, userNamespaces, reasons };
}

/** Directories on the way to `dir` (and `dir`) that a non-root user cannot search: a container root in a user namespace cannot reach berth's mounts through them. */
export async function unsearchable(dir: string): Promise<string[]> {
  const { stat } = await import("node:fs/promises");
  const out: string[] = [];
  let cur = "";
  for (const part of ["", ...dir.split("/").filter(Boolean)]) {
    cur = !part ? "/" : cur === "/" ? `/${part}` : `${cur}/${part}`;
    try {
      const st = await stat(cur);
      if (!(st.mode & 0o001)) out.push(`${cur} (mode 0${(st.mode & 0o7777).toString(8)})`);
    } catch { /* created later by berth, traversable */ }
  }
  return out;
}

export interface HandlerProbeInput {
  helper: string;
  stateDir: string;
  rootDir: string;
  handlers: { name: string; features(): Promise<RuntimeFeatures> }[];
}

/** The one start-up probe: every handler's `features`, and berth's own mounts on the state and root filesystems. */
export async function probeHandlers(i: HandlerProbeInput): Promise<Map<string, MountFeatures>> {
  const [state, root, blocked] = await Promise.all([
    probeFilesystem(i.helper, i.stateDir), probeFilesystem(i.helper, i.rootDir), unsearchable(i.stateDir),
  ]);
  const out = new Map<string, MountFeatures>();
  for (const h of i.handlers) {
    const f = await h.features().catch((err: Error) => ({ mountOptions: [], namespaces: [], error: err.message }) as RuntimeFeatures);
    const mf = mountFeatures(h.name, f, f.error ?? "", { state, root });
    if (blocked.length && mf.userNamespaces) {
      mf.userNamespaces = false;
      mf.reasons.push(`user namespaces: a container's root could not reach berth's mounts under ${i.stateDir}: not searchable by other users: ${blocked.join(", ")}`);
    }
    out.set(h.name, mf);
  }
  return out;
}
