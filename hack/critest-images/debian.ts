// Debian inputs for the stand-in images: packages fetched with `apt-get download`
// and unpacked with `dpkg-deb -x` into a cache keyed by package version, and the
// shared libraries a binary needs (from `ldd`), read from the host.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from "node:fs";
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

/** The candidate version apt would download for a package. */
export function candidateVersion(pkg: string): string {
  const out = run("apt-cache", ["show", "--no-all-versions", pkg]);
  const m = /^Version: (.+)$/m.exec(out);
  if (!m) throw new DebianError(`apt-cache show ${pkg}: no Version field`);
  return m[1]!.trim();
}

/**
 * Downloads (once per version) and unpacks a Debian package; returns the directory
 * holding its unpacked files. `cacheDir` keeps them between runs.
 */
export function unpackDeb(pkg: string, cacheDir: string): { dir: string; version: string } {
  const version = candidateVersion(pkg);
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
  renameSync(tmp, dir);
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
