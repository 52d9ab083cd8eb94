// registries.d (containers-registries.d(5)): where the signatures of an image live.
// Every *.yaml file in the directory is read; `default-docker` applies to all images, `docker`
// maps scopes (as in the policy: exact reference, repository, namespaces, host, *.domain) to
// `lookaside` (simple signing signatures over http, https or file) and
// `use-sigstore-attachments`. The first scope that sets a field wins, as in containers/image.
import { readdir, stat } from "node:fs/promises";
import { readBoundedFile } from "../../oci-runtime/foundation/bounded-file.ts";
import path from "node:path";
import { failedPrecondition } from "../../oci-runtime/foundation/errdefs.ts";
import type { Reference } from "../reference.ts";
import { scopeCandidates, scopeProblem } from "./identity.ts";

export const MAX_REGISTRIES_D_FILE = 1 << 20;
export const MAX_REGISTRIES_D_FILES = 256;

interface Entry { lookaside?: URL; useSigstoreAttachments?: boolean }

export interface RegistriesD {
  dir: string;
  defaultDocker?: Entry;
  docker: Map<string, Entry>;
  /** "name:mtime:size" of every file read, for change detection. */
  stamp: string;
}

export interface SignatureStorage { lookaside?: URL; useSigstoreAttachments: boolean }

const q = JSON.stringify;
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function entry(v: unknown, file: string, where: string): Entry {
  const fail = (key: string, why: string): never => { throw failedPrecondition(`registries.d ${file}: key ${q(key)} ${why}`); };
  if (v === null || v === undefined) return {};
  if (!isObj(v)) fail(where, "must be a mapping");
  const o = v as Record<string, unknown>;
  const out: Entry = {};
  for (const [k, val] of Object.entries(o)) {
    switch (k) {
      case "lookaside": case "sigstore": { // "sigstore" is the older name of "lookaside"
        if (typeof val !== "string") fail(`${where}.${k}`, "must be a URL");
        let u: URL | undefined;
        try { u = new URL(val as string); } catch { u = undefined; }
        if (!u || !["http:", "https:", "file:"].includes(u.protocol)) fail(`${where}.${k}`, `must be an http, https or file URL, got ${q(val)}`);
        out.lookaside = u;
        break;
      }
      case "lookaside-staging": case "sigstore-staging": // where signing tools write; berth only reads
        if (typeof val !== "string") fail(`${where}.${k}`, "must be a URL");
        break;
      case "use-sigstore-attachments":
        if (typeof val !== "boolean") fail(`${where}.${k}`, `must be true or false, got ${q(val)}`);
        out.useSigstoreAttachments = val as boolean;
        break;
      default:
        fail(`${where}.${k}`, "is not supported by berth (supported: lookaside, sigstore, lookaside-staging, sigstore-staging, use-sigstore-attachments)");
    }
  }
  return out;
}

/** Reads every *.yaml in `dir`; a missing directory is an empty configuration. */
export async function loadRegistriesD(dir: string): Promise<RegistriesD> {
  const out: RegistriesD = { dir, docker: new Map(), stamp: "" };
  if (!dir) return out;
  let names: string[];
  try { names = (await readdir(dir)).filter((n) => n.endsWith(".yaml")).sort(); } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return out;
    throw failedPrecondition(`registries.d ${dir} cannot be read (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
  if (names.length > MAX_REGISTRIES_D_FILES) throw failedPrecondition(`registries.d ${dir} holds more than ${MAX_REGISTRIES_D_FILES} .yaml files`);
  const stamps: string[] = [];
  const { parse: parseYaml } = names.length ? await import("yaml") : { parse: () => undefined };
  for (const name of names) {
    const file = path.join(dir, name);
    const st = await stat(file);
    if (!st.isFile()) continue;
    if (st.size > MAX_REGISTRIES_D_FILE) throw failedPrecondition(`registries.d ${file} is larger than the ${MAX_REGISTRIES_D_FILE}-byte limit`);
    stamps.push(`${name}:${st.mtimeMs}:${st.size}:${st.ino}`);
    let doc: unknown;
    let text: string;
    // stat above only skips non-files in the listing; the read itself is non-blocking and bounded.
    try { text = (await readBoundedFile(file, MAX_REGISTRIES_D_FILE)).toString("utf8"); } catch (err) {
      throw failedPrecondition(`registries.d ${file} ${(err as Error).message}`, err);
    }
    try { doc = parseYaml(text, { maxAliasCount: 16, uniqueKeys: true }); } catch (err) {
      throw failedPrecondition(`registries.d ${file}: invalid YAML: ${(err as Error).message.split("\n")[0]}`);
    }
    if (doc === null || doc === undefined) continue; // only comments
    if (!isObj(doc)) throw failedPrecondition(`registries.d ${file}: must be a mapping`);
    for (const [k, v] of Object.entries(doc)) {
      if (k === "default-docker") {
        if (out.defaultDocker) throw failedPrecondition(`registries.d ${file}: key "default-docker" is also set in another file of ${dir}`);
        out.defaultDocker = entry(v, file, k);
      } else if (k === "docker") {
        if (v === null) continue;
        if (!isObj(v)) throw failedPrecondition(`registries.d ${file}: key "docker" must be a mapping of scopes`);
        for (const [scope, e] of Object.entries(v)) {
          const problem = scope === "" ? "is empty" : scopeProblem(scope);
          if (problem) throw failedPrecondition(`registries.d ${file}: key ${q(`docker.${scope}`)} is not a valid scope: ${problem}`);
          if (out.docker.has(scope)) throw failedPrecondition(`registries.d ${file}: scope ${q(scope)} is configured twice in ${dir}`);
          out.docker.set(scope, entry(e, file, `docker.${scope}`));
        }
      } else {
        throw failedPrecondition(`registries.d ${file}: key ${q(k)} is not supported by berth (supported: default-docker, docker)`);
      }
    }
  }
  out.stamp = stamps.join("|");
  return out;
}

/** Where `r`'s signatures live. */
export function signatureStorage(d: RegistriesD, r: Reference): SignatureStorage {
  let lookaside: URL | undefined;
  let attach: boolean | undefined;
  for (const s of scopeCandidates(r)) {
    const e = d.docker.get(s);
    if (!e) continue;
    lookaside ??= e.lookaside;
    attach ??= e.useSigstoreAttachments;
  }
  lookaside ??= d.defaultDocker?.lookaside;
  attach ??= d.defaultDocker?.useSigstoreAttachments;
  return { ...(lookaside ? { lookaside } : {}), useSigstoreAttachments: attach ?? false };
}

/** `<lookaside>/<repository path>@sha256=<hex>/signature-<n>` (n from 1). */
export function lookasideUrl(base: URL, r: Reference, manifestDigest: string, n: number): URL {
  const u = new URL(base.href);
  const [algo, hex] = manifestDigest.split(":");
  u.pathname = `${u.pathname.replace(/\/+$/, "")}/${r.path}@${algo}=${hex}/signature-${n}`;
  return u;
}
