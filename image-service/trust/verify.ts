// Signature checks. Simple signing: an OpenPGP signed message (openpgp) whose content is the
// JSON payload {"critical":{"identity":{"docker-reference"},"image":{"docker-manifest-digest"},
// "type":"atomic container signature"},"optional":{...}}. Sigstore: the same payload with type
// "cosign container image signature", signed with an ECDSA, Ed25519 or RSA key (node:crypto),
// the signature base64 in the layer annotation dev.cosignproject.cosign/signature.
// Everything in a signature is hostile until the cryptography says otherwise; even then the
// payload is parsed strictly.
import type { KeyObject } from "node:crypto";
import { nodeCrypto } from "../../oci-runtime/foundation/builtins.ts";
import type * as openpgp from "openpgp";
import type { SignedIdentity } from "./identity.ts";
import { type IdentityRef, formatIdentity, identityMatches, parseIdentity } from "./identity.ts";

/** Largest signature (or sigstore payload) accepted, and largest decompressed OpenPGP content. */
export const MAX_SIGNATURE_BYTES = 4 << 20;

export type Reason = "no_signature" | "unknown_key" | "invalid_signature" | "digest_mismatch" | "identity_mismatch" | "rejected";

export const REASON_TEXT: Record<Reason, string> = {
  no_signature: "no signature",
  unknown_key: "signed by an unknown key",
  invalid_signature: "invalid signature",
  digest_mismatch: "digest mismatch",
  identity_mismatch: "identity mismatch",
  rejected: "rejected by the policy",
};

/** When several signatures fail, the one that got furthest explains the refusal. */
export const REASON_RANK: Record<Reason, number> = {
  no_signature: 0, rejected: 0, invalid_signature: 1, unknown_key: 2, digest_mismatch: 3, identity_mismatch: 4,
};

export interface CheckResult { ok: boolean; reason?: Reason; detail?: string }

const SIMPLE_TYPE = "atomic container signature";
const SIGSTORE_TYPE = "cosign container image signature";
const digestRe = /^sha256:[a-f0-9]{64}$|^sha512:[a-f0-9]{128}$/;
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const exactKeys = (o: Record<string, unknown>, keys: string[]) => Object.keys(o).length === keys.length && keys.every((k) => k in o);

/** Parses a payload that a trusted key signed; anything off the format is invalid. */
export function parsePayload(bytes: Uint8Array, type: string): { reference: IdentityRef; digest: string; claimed: string } | undefined {
  let doc: unknown;
  try { doc = JSON.parse(Buffer.from(bytes).toString("utf8")); } catch { return undefined; }
  if (!isObj(doc) || !isObj(doc.critical)) return undefined;
  for (const k of Object.keys(doc)) if (k !== "critical" && k !== "optional") return undefined;
  if (doc.optional !== undefined && doc.optional !== null && !isObj(doc.optional)) return undefined;
  const c = doc.critical;
  if (!exactKeys(c, ["type", "image", "identity"]) || c.type !== type) return undefined;
  if (!isObj(c.image) || !exactKeys(c.image, ["docker-manifest-digest"])) return undefined;
  if (!isObj(c.identity) || !exactKeys(c.identity, ["docker-reference"])) return undefined;
  const digest = c.image["docker-manifest-digest"];
  const claimed = c.identity["docker-reference"];
  if (typeof digest !== "string" || !digestRe.test(digest) || typeof claimed !== "string") return undefined;
  const reference = parseIdentity(claimed);
  if (!reference) return undefined;
  return { reference, digest, claimed };
}

function checkClaims(payload: ReturnType<typeof parsePayload>, manifestDigest: string, rule: SignedIdentity, intended: IdentityRef): CheckResult {
  if (!payload) return { ok: false, reason: "invalid_signature", detail: "the signed payload is not a valid signature payload" };
  if (payload.digest !== manifestDigest) {
    return { ok: false, reason: "digest_mismatch", detail: `the signature is for manifest ${payload.digest}, the image is ${manifestDigest}` };
  }
  if (!identityMatches(rule, intended, payload.reference)) {
    return { ok: false, reason: "identity_mismatch", detail: `the signature is for ${JSON.stringify(payload.claimed)}, which ${rule.type} does not accept for ${formatIdentity(intended)}` };
  }
  return { ok: true };
}

const pgpConfig = { maxDecompressedMessageSize: MAX_SIGNATURE_BYTES };

/** Verifies one simple signing signature (an OpenPGP signed message) against trusted keys. */
export async function checkSimpleSigning(sig: Uint8Array, keys: openpgp.PublicKey[], manifestDigest: string, rule: SignedIdentity, intended: IdentityRef): Promise<CheckResult> {
  if (sig.length > MAX_SIGNATURE_BYTES) return { ok: false, reason: "invalid_signature", detail: `a signature is larger than ${MAX_SIGNATURE_BYTES} bytes` };
  const pgp = await import("openpgp");
  let message: openpgp.Message<Uint8Array>;
  try { message = await pgp.readMessage({ binaryMessage: sig, config: pgpConfig }); } catch (err) {
    return { ok: false, reason: "invalid_signature", detail: `not an OpenPGP message (${(err as Error).message})` };
  }
  const ids = message.getSigningKeyIDs();
  if (ids.length !== 1) return { ok: false, reason: "invalid_signature", detail: `the message holds ${ids.length} signatures, not 1` };
  const keyId = ids[0]!;
  const key = keys.find((k) => k.getKeys(keyId).length > 0);
  if (!key) return { ok: false, reason: "unknown_key", detail: `signed by key ${keyId.toHex().toUpperCase()}, which the policy does not trust` };
  let data: Uint8Array;
  try {
    const res = await pgp.verify({ message, verificationKeys: [key], expectSigned: true, format: "binary", config: pgpConfig });
    data = res.data as Uint8Array;
  } catch (err) {
    return { ok: false, reason: "invalid_signature", detail: `the signature by key ${keyId.toHex().toUpperCase()} does not verify (${(err as Error).message})` };
  }
  return checkClaims(parsePayload(data, SIMPLE_TYPE), manifestDigest, rule, intended);
}

/** Verifies one sigstore signature (payload bytes + base64 signature) against trusted public keys. */
export function checkSigstore(payload: Buffer, signatureB64: string, keys: KeyObject[], manifestDigest: string, rule: SignedIdentity, intended: IdentityRef): CheckResult {
  if (payload.length > MAX_SIGNATURE_BYTES || signatureB64.length > MAX_SIGNATURE_BYTES) {
    return { ok: false, reason: "invalid_signature", detail: `a signature is larger than ${MAX_SIGNATURE_BYTES} bytes` };
  }
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(signatureB64)) return { ok: false, reason: "invalid_signature", detail: "the signature annotation is not base64" };
  const sig = Buffer.from(signatureB64, "base64");
  const verified = keys.some((key) => {
    try {
      return nodeCrypto().verify(key.asymmetricKeyType === "ed25519" ? null : "sha256", payload, key, sig);
    } catch {
      return false; // a malformed signature for this key type
    }
  });
  if (!verified) return { ok: false, reason: "unknown_key", detail: "no key the policy trusts verifies the signature" };
  return checkClaims(parsePayload(payload, SIGSTORE_TYPE), manifestDigest, rule, intended);
}
