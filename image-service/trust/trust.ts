// Image trust: decides, inside PullImage and before anything of the image is unpacked or
// recorded, whether the resolved manifest digest is acceptable under containers-policy.json.
// The policy (and the per-namespace policy) is re-read on the first pull after its file or one
// of its key files changes, so an operator's edit applies to the next pull. registries.d is
// re-read on every check (a handful of small files).
import { readdir, readFile, stat } from "node:fs/promises";
import { BoundedReadError, readBoundedFile } from "../../oci-runtime/foundation/bounded-file.ts";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { BerthError, Code, failedPrecondition, invalidArgument, isNotFound, unavailable } from "../../oci-runtime/foundation/errdefs.ts";
import type { Logger } from "../../oci-runtime/foundation/log.ts";
import { type Reference, formatReference } from "../reference.ts";
import type { PullAuth, RegistryClient } from "../registry/client.ts";
import { loadHosts } from "../registry/hosts.ts";
import { pullIdentity } from "./identity.ts";
import { type Policy, type Requirement, loadPolicy, requirementsFor } from "./policy.ts";
import { type RegistriesD, loadRegistriesD, lookasideUrl, signatureStorage } from "./registries-d.ts";
import { type CheckResult, type Reason, MAX_SIGNATURE_BYTES, REASON_RANK, REASON_TEXT, checkSigstore, checkSimpleSigning } from "./verify.ts";

/** Most signatures read from one lookaside location or one sigstore attachment manifest. */
export const MAX_SIGNATURES = 64;
/** Most signature bytes read for one image (all lookaside locations, or all attachment payloads). */
export const MAX_SIGNATURE_TOTAL = 16 << 20;
export const SIGSTORE_LAYER_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json";
export const SIGSTORE_SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature";
const dnsLabel = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export interface TrustOptions {
  /** containers-policy.json; "" for none. */
  policy: string;
  /** Directory of <namespace>.json policies; "" for none. */
  policyDir: string;
  /** registries.d directory. */
  registriesD: string;
  /** hosts.toml directory (mirrors are also looked up for lookaside signatures). */
  hostsDir: string;
  /** Bound on each lookaside request. */
  timeoutMs: number;
  log: Logger;
  onOutcome?: (o: TrustOutcome) => void;
}

export interface TrustOutcome {
  result: "verified" | "accepted" | "refused";
  reason?: Reason | "policy_error";
  image: string;
  policy: string;
  scope: string;
}

export interface TrustSummary { enabled: boolean; policy: string; namespaces: string[]; registriesD: string }

/** Validates a namespace before it names a file. */
export function checkNamespace(ns: string): void {
  if (!dnsLabel.test(ns)) {
    throw invalidArgument(`sandbox_config.metadata.namespace ${JSON.stringify(ns.slice(0, 100))} is not a valid DNS label (lowercase letters, digits and '-', at most 63)`);
  }
}

async function stampOf(files: string[]): Promise<string> {
  const parts = await Promise.all(files.map(async (f) => {
    try { const s = await stat(f); return `${f}:${s.mtimeMs}:${s.size}:${s.ino}`; } catch { return `${f}:missing`; }
  }));
  return parts.join("|");
}

const safeUrl = (u: URL) => (u.protocol === "file:" ? u.pathname : `${u.origin}${u.pathname}`);

export class ImageTrust {
  #opts: TrustOptions;
  #client: RegistryClient | undefined;
  #cache = new Map<string, { stamp: string; policy: Policy }>();

  /** `client` fetches sigstore attachments; without one (config check) only validate() is usable. */
  constructor(opts: TrustOptions, client: RegistryClient | undefined) {
    this.#opts = opts;
    this.#client = client;
  }

  get enabled(): boolean { return this.#opts.policy !== "" || this.#opts.policyDir !== ""; }

  /** Reads and checks every policy, key and registries.d file; throws naming the file and key. */
  async validate(): Promise<TrustSummary> {
    const namespaces: string[] = [];
    if (this.#opts.policy) await this.#load(this.#opts.policy);
    if (this.#opts.policyDir) {
      let names: string[];
      try { names = await readdir(this.#opts.policyDir); } catch (err) {
        throw failedPrecondition(`signature policy directory ${this.#opts.policyDir} cannot be read (${(err as NodeJS.ErrnoException).code ?? err})`);
      }
      for (const n of names.filter((x) => x.endsWith(".json")).sort()) {
        const ns = n.slice(0, -5);
        if (!dnsLabel.test(ns)) throw failedPrecondition(`signature policy directory ${this.#opts.policyDir}: ${n} is not named <namespace>.json with a valid namespace`);
        await this.#load(path.join(this.#opts.policyDir, n));
        namespaces.push(ns);
      }
    }
    // With verification off nothing is read, so a registries.d left by other tools changes nothing.
    if (this.enabled) await loadRegistriesD(this.#opts.registriesD);
    return { enabled: this.enabled, policy: this.#opts.policy, namespaces, registriesD: this.#opts.registriesD };
  }

  async #load(file: string): Promise<Policy> {
    const cached = this.#cache.get(file);
    if (cached && (await stampOf(cached.policy.files)) === cached.stamp) return cached.policy;
    const before = await stampOf([file]);
    const policy = await loadPolicy(file);
    // Stamped from the files the policy read (the policy first); when the policy changed while
    // it was read, nothing is cached and the next pull reads it again.
    const stamp = await stampOf(policy.files);
    if (stamp === before || stamp.startsWith(`${before}|`)) this.#cache.set(file, { stamp, policy });
    else this.#cache.delete(file);
    if (cached) this.#opts.log.info("signature policy reloaded", { policy: file });
    return policy;
  }

  async #policyFor(namespace: string | undefined): Promise<Policy | undefined> {
    if (namespace && this.#opts.policyDir) {
      checkNamespace(namespace);
      const file = path.join(this.#opts.policyDir, `${namespace}.json`);
      let exists = false;
      try { exists = (await stat(file)).isFile(); } catch { exists = false; }
      if (exists) return this.#load(file);
    }
    return this.#opts.policy ? this.#load(this.#opts.policy) : undefined;
  }

  /**
   * Throws FAILED_PRECONDITION unless the policy accepts the image whose top-level manifest
   * has `manifestDigest`. A no-op when no policy applies.
   */
  async check(r: Reference, manifestDigest: string, namespace: string | undefined, auth?: PullAuth): Promise<void> {
    if (namespace) checkNamespace(namespace);
    const image = formatReference(r);
    let policy: Policy | undefined;
    try {
      policy = await this.#policyFor(namespace);
    } catch (err) {
      if (err instanceof BerthError && err.code !== Code.FAILED_PRECONDITION) throw err;
      this.#opts.onOutcome?.({ result: "refused", reason: "policy_error", image, policy: "", scope: "" });
      throw failedPrecondition(`image ${image} refused: the signature policy cannot be used, so no image is trusted until it is fixed: ${(err as Error).message}`, err);
    }
    if (!policy) return;
    const { scope, requirements } = requirementsFor(policy, r);
    const refuse: (reason: Reason | "policy_error", detail: string) => never = (reason, detail) => {
      this.#opts.onOutcome?.({ result: "refused", reason, image, policy: policy.file, scope });
      this.#opts.log.warn("image refused by signature policy", { image, digest: manifestDigest, policy: policy.file, scope, reason, detail });
      const text = reason === "policy_error" ? "policy error" : REASON_TEXT[reason];
      throw failedPrecondition(`image ${image} (manifest ${manifestDigest}) refused by signature policy ${policy.file}, scope ${scope}: ${text}: ${detail}`);
    };
    const intended = pullIdentity(r);
    let registriesD: RegistriesD;
    try { registriesD = await loadRegistriesD(this.#opts.registriesD); } catch (err) {
      return refuse("policy_error", (err as Error).message);
    }
    let lookaside: Promise<{ sigs: Uint8Array[]; where: string }> | undefined;
    let sigstore: Promise<{ sigs: { payload: Buffer; signature: string }[]; where: string }> | undefined;
    let verified = false;
    for (const req of requirements) {
      if (req.type === "insecureAcceptAnything") continue;
      if (req.type === "reject") refuse("rejected", `${scope} says reject`);
      let results: CheckResult[];
      let where: string;
      if (req.type === "signedBy") {
        lookaside ??= this.#lookaside(registriesD, r, manifestDigest);
        const got = await lookaside;
        where = got.where;
        results = [];
        for (const s of got.sigs) results.push(await checkSimpleSigning(s, req.keys, manifestDigest, req.identity, intended));
      } else {
        sigstore ??= this.#sigstore(registriesD, r, manifestDigest, auth);
        const got = await sigstore;
        where = got.where;
        results = got.sigs.map((s) => checkSigstore(s.payload, s.signature, req.keys, manifestDigest, req.identity, intended));
      }
      if (results.some((x) => x.ok)) { verified = true; continue; }
      if (results.length === 0) refuse("no_signature", `${requirementName(req)} found no signature (${where})`);
      const best = results.reduce((a, b) => (REASON_RANK[b.reason!] > REASON_RANK[a.reason!] ? b : a));
      refuse(best.reason!, `${requirementName(req)}: ${best.detail} (${results.length} signature${results.length === 1 ? "" : "s"} checked, ${where})`);
    }
    this.#opts.onOutcome?.({ result: verified ? "verified" : "accepted", image, policy: policy.file, scope });
    this.#opts.log.info(verified ? "image signature verified" : "image accepted by signature policy", { image, digest: manifestDigest, policy: policy.file, scope });
  }

  /** The image's own name and, for each hosts.toml mirror, the mirror's location. */
  async #locations(r: Reference): Promise<Reference[]> {
    const out = [r];
    for (const h of await loadHosts(this.#opts.hostsDir, r.domain)) {
      if (h.isServer) continue;
      const domain = new URL(h.base).host;
      if (!out.some((x) => x.domain === domain)) out.push({ ...r, domain });
    }
    return out;
  }

  async #lookaside(d: RegistriesD, r: Reference, digest: string): Promise<{ sigs: Uint8Array[]; where: string }> {
    const sigs: Uint8Array[] = [];
    const seen = new Set<string>();
    const places: string[] = [];
    let total = 0;
    for (const loc of await this.#locations(r)) {
      const base = signatureStorage(d, loc).lookaside;
      if (!base) continue;
      const first = lookasideUrl(base, loc, digest, 1);
      if (seen.has(first.href)) continue;
      seen.add(first.href);
      places.push(safeUrl(first).replace(/\/signature-1$/, "/signature-N"));
      for (let n = 1; ; n++) {
        if (n > MAX_SIGNATURES) throw unavailable(`lookaside ${safeUrl(base)} holds more than ${MAX_SIGNATURES} signatures for ${formatReference(loc)}@${digest}`);
        const body = await this.#fetchSignature(lookasideUrl(base, loc, digest, n));
        if (!body) break;
        total += body.length;
        if (total > MAX_SIGNATURE_TOTAL) throw unavailable(`the signatures of ${formatReference(loc)}@${digest} exceed ${MAX_SIGNATURE_TOTAL} bytes in all`);
        sigs.push(body);
      }
    }
    const where = places.length ? `looked up ${places.join(" and ")}` : `no lookaside is configured for ${formatReference(r)} in registries.d ${this.#opts.registriesD || "(unset)"}`;
    return { sigs, where };
  }

  /** One lookaside signature, or undefined when there is none (404 / no such file). */
  async #fetchSignature(u: URL): Promise<Uint8Array | undefined> {
    const what = `signature ${safeUrl(u)}`;
    if (u.protocol === "file:") {
      const file = fileURLToPath(u);
      // Opened non-blocking and read bounded: a FIFO or device in its place is refused at once.
      try {
        return new Uint8Array(await readBoundedFile(file, MAX_SIGNATURE_BYTES));
      } catch (err) {
        if (err instanceof BoundedReadError && err.problem.kind === "missing") return undefined;
        throw unavailable(`${what} (${file}) ${(err as Error).message}`, err);
      }
    }
    const plain = new URL(u.href);
    plain.username = "";
    plain.password = "";
    const headers: Record<string, string> = { "user-agent": "berth/0.1" };
    if (u.username || u.password) headers.authorization = "Basic " + Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString("base64");
    let res: Response;
    try {
      res = await fetch(plain, { headers, redirect: "follow", signal: AbortSignal.timeout(this.#opts.timeoutMs) });
    } catch (err) {
      const cause = (err as Error).name === "TimeoutError" ? `no answer within ${this.#opts.timeoutMs} ms (registry.stall_timeout)` : ((err as { cause?: Error }).cause?.message ?? (err as Error).message);
      throw unavailable(`fetching ${what} failed: ${cause}`);
    }
    if (res.status === 404) { await res.body?.cancel(); return undefined; }
    if (res.status !== 200) { await res.body?.cancel(); throw unavailable(`fetching ${what} answered http ${res.status}`); }
    const len = Number(res.headers.get("content-length") ?? "0");
    if (len > MAX_SIGNATURE_BYTES) { await res.body?.cancel(); throw unavailable(`${what} is larger than the ${MAX_SIGNATURE_BYTES}-byte limit`); }
    const chunks: Uint8Array[] = [];
    let total = 0;
    try {
      for await (const c of res.body as unknown as AsyncIterable<Uint8Array>) {
        total += c.length;
        if (total > MAX_SIGNATURE_BYTES) throw unavailable(`${what} is larger than the ${MAX_SIGNATURE_BYTES}-byte limit`);
        chunks.push(c);
      }
    } catch (err) {
      if (err instanceof BerthError) throw err;
      throw unavailable(`reading ${what} failed: ${(err as Error).name === "TimeoutError" ? `not complete within ${this.#opts.timeoutMs} ms (registry.stall_timeout)` : (err as Error).message}`);
    }
    return new Uint8Array(Buffer.concat(chunks));
  }

  /** Sigstore attachments: the manifest tagged sha256-<hex>.sig in the image's repository (through the same mirrors and auth). */
  async #sigstore(d: RegistriesD, r: Reference, digest: string, auth?: PullAuth): Promise<{ sigs: { payload: Buffer; signature: string }[]; where: string }> {
    const locs = await this.#locations(r);
    if (!locs.some((l) => signatureStorage(d, l).useSigstoreAttachments)) {
      return { sigs: [], where: `use-sigstore-attachments is not enabled for ${formatReference(r)} in registries.d ${this.#opts.registriesD || "(unset)"}` };
    }
    const tag = `${digest.replace(":", "-")}.sig`;
    const sigRef: Reference = { domain: r.domain, path: r.path, tag };
    const where = `looked up ${r.domain}/${r.path}:${tag}`;
    let m;
    const client = this.#client;
    if (!client) throw new Error("ImageTrust: no registry client");
    try { m = await client.resolve(sigRef, auth); } catch (err) {
      if (isNotFound(err)) return { sigs: [], where };
      throw err;
    }
    const bad = (why: string) => unavailable(`sigstore attachment ${r.domain}/${r.path}:${tag} is malformed: ${why}`);
    let doc: { layers?: unknown };
    try { doc = JSON.parse(m.body.toString("utf8")) as { layers?: unknown }; } catch { throw bad("not JSON"); }
    if (typeof doc !== "object" || doc === null || !Array.isArray(doc.layers)) throw bad("no layers");
    if (doc.layers.length > MAX_SIGNATURES) throw bad(`more than ${MAX_SIGNATURES} signatures`);
    const sigs: { payload: Buffer; signature: string }[] = [];
    let total = 0;
    for (const l of doc.layers as Record<string, unknown>[]) {
      if (typeof l !== "object" || l === null) throw bad("a layer is not an object");
      if (l.mediaType !== SIGSTORE_LAYER_TYPE) continue; // not a signature this format knows
      const sig = (l.annotations as Record<string, unknown> | undefined)?.[SIGSTORE_SIGNATURE_ANNOTATION];
      if (typeof sig !== "string") continue;
      if (typeof l.digest !== "string" || !/^sha256:[a-f0-9]{64}$/.test(l.digest) || !Number.isInteger(l.size) || (l.size as number) < 0) throw bad("a layer has no valid digest and size");
      if ((l.size as number) > MAX_SIGNATURE_BYTES) throw bad(`a payload is larger than the ${MAX_SIGNATURE_BYTES}-byte limit`);
      total += (l.size as number) + sig.length;
      if (total > MAX_SIGNATURE_TOTAL) throw bad(`its signatures exceed ${MAX_SIGNATURE_TOTAL} bytes in all`);
      const payload = await client.fetchSmallBlob(sigRef, { mediaType: SIGSTORE_LAYER_TYPE, digest: l.digest, size: l.size as number }, auth);
      sigs.push({ payload, signature: sig });
    }
    return { sigs, where };
  }
}

function requirementName(req: Requirement): string {
  return req.type === "signedBy" ? "signedBy" : req.type === "sigstoreSigned" ? "sigstoreSigned" : req.type;
}

/** `berthd config check`: validates the policies, their keys and registries.d; a line for the operator. */
export async function checkTrustConfig(c: { policy: string; policyDir: string; registriesD: string }, log: Logger): Promise<string> {
  const t = new ImageTrust({ ...c, hostsDir: "", timeoutMs: 1000, log }, undefined);
  const s = await t.validate();
  if (!s.enabled) return "image signature verification: off (image.signature_policy is unset)";
  const parts = [s.policy ? `policy ${s.policy}` : "no default policy"];
  if (c.policyDir) parts.push(`namespace policies in ${c.policyDir}: ${s.namespaces.length ? s.namespaces.join(", ") : "none"}`);
  parts.push(`registries.d ${s.registriesD}`);
  return `image signature verification: on (${parts.join("; ")})`;
}
