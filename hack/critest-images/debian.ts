// Debian inputs for the stand-in images: packages fetched with `apt-get download`
// and unpacked with `dpkg-deb -x` into a cache keyed by package version, and the
// shared libraries a binary needs (from `ldd`), read from the host.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";

export class DebianError extends Error {
  constructor(message: string) { super(message); this.name = "DebianError"; }
}

function run(cmd: string, args: string[], cwd?: string): string {
  try {
    return execFileSync(cmd, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new DebianError(`${cmd} ${args.join(" ")} failed: ${(e.stderr ?? e.message).trim().split("\n").slice(-3).join(" | ")}`);
  }
}

/** Parses `apt-cache show --no-all-versions` stanzas into package -> version. */
export function parseAptShow(out: string): Map<string, string> {
  const versions = new Map<string, string>();
  for (const stanza of out.split(/\n\s*\n/)) {
    const pkg = /^Package: (.+)$/m.exec(stanza)?.[1]?.trim();
    const version = /^Version: (.+)$/m.exec(stanza)?.[1]?.trim();
    if (pkg && version && !versions.has(pkg)) versions.set(pkg, version);
  }
  return versions;
}

const APT_LISTS = "/var/lib/apt/lists";

/** A stamp that changes whenever apt's package lists change (after apt-get update). */
function aptListsStamp(): string {
  try {
    return readdirSync(APT_LISTS).filter((f) => f.endsWith("_Packages") || f.endsWith("_Packages.lz4") || f.endsWith("InRelease"))
      .sort().map((f) => { const st = statSync(join(APT_LISTS, f)); return `${f}:${st.size}:${st.mtimeMs}`; }).join("|");
  } catch {
    return "";
  }
}

/**
 * The candidate versions apt would download, from one apt-cache call; remembered
 * in `cacheDir` until apt's package lists change (apt-cache takes seconds).
 */
export function candidateVersions(pkgs: readonly string[], cacheDir: string): Map<string, string> {
  const memo = join(cacheDir, "apt-versions.json");
  const stamp = aptListsStamp();
  try {
    const saved = JSON.parse(readFileSync(memo, "utf8")) as { stamp: string; versions: Record<string, string> };
    if (stamp !== "" && saved.stamp === stamp && pkgs.every((p) => saved.versions[p])) return new Map(pkgs.map((p) => [p, saved.versions[p]!]));
  } catch { /* none yet */ }
  const versions = parseAptShow(run("apt-cache", ["show", "--no-all-versions", ...pkgs]));
  for (const p of pkgs) if (!versions.has(p)) throw new DebianError(`apt-cache show ${p}: no Version field`);
  mkdirSync(cacheDir, { recursive: true });
  writeFileSync(memo, JSON.stringify({ stamp, versions: Object.fromEntries(versions) }));
  return versions;
}

/**
 * Downloads (once per version) and unpacks a Debian package; returns the directory
 * holding its unpacked files. `cacheDir` keeps them between runs.
 */
export function unpackDeb(pkg: string, version: string, cacheDir: string): { dir: string; version: string } {
  const safe = version.replace(/[^A-Za-z0-9.+~-]/g, "_");
  const dir = join(cacheDir, "debs", `${pkg}_${safe}`);
  const root = join(dir, "root");
  if (existsSync(root)) return { dir: root, version };
  rmSync(dir, { recursive: true, force: true });
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  run("apt-get", ["download", "-q", `${pkg}=${version}`], tmp);
  const deb = readdirSync(tmp).find((f) => f.endsWith(".deb"));
  if (!deb) throw new DebianError(`apt-get download ${pkg}=${version} left no .deb in ${tmp}`);
  run("dpkg-deb", ["-x", join(tmp, deb), join(tmp, "root")]);
  rmSync(join(tmp, deb));
  try {
    renameSync(tmp, dir);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    if (!existsSync(root)) throw err; // else another build unpacked it meanwhile
  }
  return { dir: root, version };
}

export interface SharedLib {
  /** Library file name as the loader looks it up ("libc.so.6"). */
  name: string;
  /** Host path ldd resolved it to. */
  hostPath: string;
}

/** Parses `ldd` output into the libraries and the program interpreter it lists. */
export function parseLdd(out: string): { libs: SharedLib[]; interpreter: string | undefined } {
  const libs: SharedLib[] = [];
  let interpreter: string | undefined;
  for (const line of out.split("\n")) {
    const t = line.trim();
    if (t === "" || t.startsWith("linux-vdso") || t.startsWith("linux-gate")) continue;
    const arrow = /^(\S+) => (\/\S+) \(0x[0-9a-f]+\)$/.exec(t);
    if (arrow) { libs.push({ name: arrow[1]!, hostPath: arrow[2]! }); continue; }
    const bare = /^(\/\S+) \(0x[0-9a-f]+\)$/.exec(t);
    if (bare) { interpreter = bare[1]!; continue; }
    if (/not found/.test(t)) throw new DebianError(`ldd: missing library: ${t}`);
  }
  return { libs, interpreter };
}

/** Libraries (and the interpreter) a dynamically linked binary needs, resolved on this host. */
export function sharedLibs(binary: string): { libs: SharedLib[]; interpreter: string | undefined } {
  const out = run("ldd", [binary]);
  if (/not a dynamic executable/.test(out)) return { libs: [], interpreter: undefined };
  return parseLdd(out);
}

export const libName = (hostPath: string) => basename(hostPath);
