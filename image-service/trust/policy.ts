// containers-policy.json(5): parsed strictly. Every key berth does not implement is refused
// with the file and the key's path named, never ignored. Keys referenced by the policy are
// read and parsed here, so a policy that loads is a policy that can be enforced.
import type { KeyObject } from "node:crypto";
import { nodeCrypto } from "../../oci-runtime/foundation/builtins.ts";
import { BoundedReadError, readBoundedFile } from "../../oci-runtime/foundation/bounded-file.ts";
import path from "node:path";
import type * as openpgp from "openpgp";
import { failedPrecondition } from "../../oci-runtime/foundation/errdefs.ts";
import { type Reference, isHostName } from "../reference.ts";
import { type SignedIdentity, parseIdentity, scopeCandidates, scopeProblem } from "./identity.ts";

/** Largest policy or key file read. */
export const MAX_POLICY_FILE = 1 << 20;
/** Most requirements in one list, scopes in one transport, keys in one requirement. */
export const MAX_ENTRIES = 1024;

export type Requirement =
  | { type: "insecureAcceptAnything" }
  | { type: "reject" }
  | { type: "signedBy"; keys: openpgp.PublicKey[]; identity: SignedIdentity; where: string }
  | { type: "sigstoreSigned"; keys: KeyObject[]; identity: SignedIdentity; where: string };

export interface Policy {
  file: string;
  default: Requirement[];
  /** transports.docker scopes. */
  docker: Map<string, Requirement[]>;
  /** Every file read to build this policy (the policy and its key files), for change detection. */
  files: string[];
}

export interface ScopedRequirements { scope: string; requirements: Requirement[] }

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const q = JSON.stringify;

class PolicyLoader {
  readonly files = new Set<string>();
  readonly file: string;
  constructor(file: string) { this.file = file; }

  fail(key: string, why: string): never {
    throw failedPrecondition(`signature policy ${this.file}: key ${q(key)} ${why}`);
  }

  only(o: Obj, where: string, allowed: string[]) {
    for (const k of Object.keys(o)) {
      if (!allowed.includes(k)) this.fail(`${where}.${k}`, `is not supported by berth (supported here: ${allowed.join(", ")})`);
    }
  }

  async readKeyFile(p: unknown, where: string): Promise<Buffer> {
    if (typeof p !== "string" || !path.isAbsolute(p)) this.fail(where, `must be an absolute path, got ${q(p)}`);
    let data: Buffer;
    // Opened non-blocking and read bounded: a FIFO or device in its place is refused at once.
    try { data = await readBoundedFile(p, MAX_POLICY_FILE); } catch (err) {
      const problem = err instanceof BoundedReadError ? err.problem : undefined;
      this.fail(where, `names ${p}, which ${problem?.kind === "missing" ? `cannot be read (${problem.code})` : (err as Error).message}`);
    }
    this.files.add(p);
    return data;
  }

  /** keyPath / keyPaths / keyData: exactly one. Answers the raw key bytes and where each came from. */
  async keySources(o: Obj, where: string): Promise<{ data: Buffer; where: string }[]> {
    const set = ["keyPath", "keyPaths", "keyData"].filter((k) => o[k] !== undefined);
    if (set.length !== 1) this.fail(where, `must set exactly one of keyPath, keyPaths, keyData${set.length ? ` (has ${set.join(", ")})` : ""}`);
    if (o.keyPath !== undefined) return [{ data: await this.readKeyFile(o.keyPath, `${where}.keyPath`), where: String(o.keyPath) }];
    if (o.keyPaths !== undefined) {
      const list = o.keyPaths;
      if (!Array.isArray(list) || list.length === 0 || list.length > MAX_ENTRIES) this.fail(`${where}.keyPaths`, `must be a non-empty list of at most ${MAX_ENTRIES} paths`);
      const out = [];
      for (const [i, p] of list.entries()) out.push({ data: await this.readKeyFile(p, `${where}.keyPaths[${i}]`), where: String(p) });
      return out;
    }
    if (typeof o.keyData !== "string" || !/^[A-Za-z0-9+/=\s]+$/.test(o.keyData) || o.keyData.length > MAX_POLICY_FILE) {
      this.fail(`${where}.keyData`, "must be base64 text");
    }
    return [{ data: Buffer.from(o.keyData, "base64"), where: `${where}.keyData` }];
  }

  identity(v: unknown, where: string): SignedIdentity {
    if (v === undefined) return { type: "matchRepoDigestOrExact" };
    if (!isObj(v)) this.fail(where, "must be an object");
    const t = v.type;
    const str = (k: string) => {
      if (typeof v[k] !== "string" || v[k] === "") this.fail(`${where}.${k}`, "must be a non-empty string");
      return v[k] as string;
    };
    switch (t) {
      case "matchExact": case "matchRepoDigestOrExact": case "matchRepository":
        this.only(v, where, ["type"]);
        return { type: t };
      case "exactReference": {
        this.only(v, where, ["type", "dockerReference"]);
        const ref = str("dockerReference");
        const id = parseIdentity(ref);
        if (!id || !(id.tag || id.digest)) this.fail(`${where}.dockerReference`, `must be a reference with a tag or digest, got ${q(ref)}`);
        return { type: t, dockerReference: ref };
      }
      case "exactRepository": {
        this.only(v, where, ["type", "dockerRepository"]);
        const ref = str("dockerRepository");
        if (!parseIdentity(ref)) this.fail(`${where}.dockerRepository`, `must be a repository name, got ${q(ref)}`);
        return { type: t, dockerRepository: ref };
      }
      case "remapIdentity": {
        this.only(v, where, ["type", "prefix", "signedPrefix"]);
        const prefix = str("prefix");
        const signedPrefix = str("signedPrefix");
        for (const [k, p] of [["prefix", prefix], ["signedPrefix", signedPrefix]] as const) {
          const id = parseIdentity(p);
          const ok = (!p.includes("/") && isHostName(p)) || (!!id && !id.tag && !id.digest && id.name === p);
          if (!ok) this.fail(`${where}.${k}`, `must be a registry host or a canonical repository or namespace name, got ${q(p)}`);
        }
        return { type: t, prefix, signedPrefix };
      }
      default:
        this.fail(`${where}.type`, `names an unknown signedIdentity type ${q(t)}`);
    }
  }

  async requirement(v: unknown, where: string): Promise<Requirement> {
    if (!isObj(v)) this.fail(where, "must be an object");
    switch (v.type) {
      case "insecureAcceptAnything": case "reject":
        this.only(v, where, ["type"]);
        return { type: v.type };
      case "signedBy": {
        this.only(v, where, ["type", "keyType", "keyPath", "keyPaths", "keyData", "signedIdentity"]);
        if (v.keyType !== "GPGKeys") this.fail(`${where}.keyType`, `must be "GPGKeys" (the only key type berth supports), got ${q(v.keyType)}`);
        const keys: openpgp.PublicKey[] = [];
        const pgp = await import("openpgp"); // loaded only when a policy uses GPG keys (~20 MB)
        for (const src of await this.keySources(v, where)) {
          let read: openpgp.Key[];
          try {
            const text = src.data.toString("latin1");
            read = text.includes("-----BEGIN PGP PUBLIC KEY BLOCK-----")
              ? await pgp.readKeys({ armoredKeys: src.data.toString("utf8") })
              : await pgp.readKeys({ binaryKeys: new Uint8Array(src.data) });
          } catch (err) {
            this.fail(where, `names ${src.where}, which holds no readable OpenPGP public key (${(err as Error).message})`);
          }
          for (const k of read) keys.push(k.isPrivate() ? k.toPublic() : (k as openpgp.PublicKey));
        }
        if (keys.length === 0) this.fail(where, "names no keys");
        return { type: "signedBy", keys, identity: this.identity(v.signedIdentity, `${where}.signedIdentity`), where };
      }
      case "sigstoreSigned": {
        this.only(v, where, ["type", "keyPath", "keyPaths", "keyData", "signedIdentity"]);
        const keys: KeyObject[] = [];
        for (const src of await this.keySources(v, where)) {
          let key: KeyObject;
          try { key = nodeCrypto().createPublicKey({ key: src.data, format: "pem" }); } catch (err) {
            this.fail(where, `names ${src.where}, which holds no readable PEM public key (${(err as Error).message})`);
          }
          const t = key.asymmetricKeyType;
          if (t !== "ec" && t !== "ed25519" && t !== "rsa" && t !== "rsa-pss") this.fail(where, `names ${src.where}, a ${t} key; berth verifies ECDSA, Ed25519 and RSA keys`);
          keys.push(key);
        }
        return { type: "sigstoreSigned", keys, identity: this.identity(v.signedIdentity, `${where}.signedIdentity`), where };
      }
      case "signedBaseLayer":
        this.fail(`${where}.type`, "is signedBaseLayer, which berth does not support");
      default:
        this.fail(`${where}.type`, `names an unknown requirement type ${q(v.type)}`);
    }
  }

  async list(v: unknown, where: string): Promise<Requirement[]> {
    if (!Array.isArray(v) || v.length === 0) this.fail(where, "must be a non-empty list of requirements");
    if (v.length > MAX_ENTRIES) this.fail(where, `has more than ${MAX_ENTRIES} requirements`);
    const out: Requirement[] = [];
    for (const [i, r] of v.entries()) out.push(await this.requirement(r, `${where}[${i}]`));
    return out;
  }
}

/** Parses policy text; `file` is used in messages and to track key files. */
export async function parsePolicy(text: string, file: string): Promise<Policy> {
  const l: PolicyLoader = new PolicyLoader(file);
  l.files.add(file);
  let doc: unknown;
  try { doc = JSON.parse(text); } catch (err) {
    throw failedPrecondition(`signature policy ${file}: invalid JSON: ${(err as Error).message}`);
  }
  if (!isObj(doc)) throw failedPrecondition(`signature policy ${file}: must be a JSON object`);
  l.only(doc, "(top level)", ["default", "transports"]);
  if (doc.default === undefined) l.fail("default", "is required");
  const def = await l.list(doc.default, "default");
  const docker = new Map<string, Requirement[]>();
  if (doc.transports !== undefined) {
    if (!isObj(doc.transports)) l.fail("transports", "must be an object");
    for (const [t, scopes] of Object.entries(doc.transports)) {
      if (t !== "docker") l.fail(`transports.${t}`, `names the ${q(t)} transport; berth pulls only from registries, so only "docker" is supported`);
      if (!isObj(scopes)) l.fail(`transports.${t}`, "must be an object of scopes");
      if (Object.keys(scopes).length > MAX_ENTRIES) l.fail(`transports.${t}`, `has more than ${MAX_ENTRIES} scopes`);
      for (const [scope, reqs] of Object.entries(scopes)) {
        const where = `transports.docker[${scope}]`;
        const problem = scopeProblem(scope);
        if (problem) l.fail(where, `is not a valid scope: ${q(scope)} ${problem}`);
        docker.set(scope, await l.list(reqs, where));
      }
    }
  }
  return { file, default: def, docker, files: [...l.files] };
}

/** Reads and parses a policy file (bounded). */
export async function loadPolicy(file: string): Promise<Policy> {
  let data: Buffer;
  try { data = await readBoundedFile(file, MAX_POLICY_FILE); } catch (err) {
    throw failedPrecondition(`signature policy ${file} ${(err as Error).message}`, err);
  }
  return parsePolicy(data.toString("utf8"), file);
}

/** The requirements that apply to `r`: the most specific docker scope, else the default. */
export function requirementsFor(p: Policy, r: Reference): ScopedRequirements {
  for (const s of scopeCandidates(r)) {
    const reqs = p.docker.get(s);
    if (reqs) return { scope: `transports.docker ${q(s)}`, requirements: reqs };
  }
  const transportDefault = p.docker.get("");
  if (transportDefault) return { scope: 'transports.docker ""', requirements: transportDefault };
  return { scope: "default", requirements: p.default };
}
