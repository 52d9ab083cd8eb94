// Signing test images with independent tools and formats, for the image trust tests:
// - simple signing with Debian's gnupg + skopeo (batch key in a private GNUPGHOME, `skopeo copy
//   --sign-by`), signatures written to a lookaside-staging directory;
// - sigstore attachments built here from the published format: the simple-signing payload
//   (type "cosign container image signature") as a layer of the manifest tagged
//   sha256-<hex>.sig, signed with a node:crypto key, the base64 signature in the layer
//   annotation dev.cosignproject.cosign/signature.
import { execFile } from "node:child_process";
import { type KeyObject, sign as cryptoSign } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { type Blob, sha256 } from "./oci-image.ts";
import { type PushTarget, pushBlob, pushManifest } from "./push.ts";

const run = promisify(execFile);
const TIMEOUT = 60_000;

/** Generates an Ed25519 signing key without passphrase in `gnupgHome`; answers its fingerprint. */
export async function gpgGenerateKey(gnupgHome: string, uid: string): Promise<string> {
  await mkdir(gnupgHome, { recursive: true, mode: 0o700 });
  const env = { ...process.env, GNUPGHOME: gnupgHome };
  await run("gpg", ["--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", "never"], { env, timeout: TIMEOUT });
  const { stdout } = await run("gpg", ["--batch", "--with-colons", "--list-secret-keys", uid], { env, timeout: TIMEOUT });
  const fpr = stdout.split("\n").find((l) => l.startsWith("fpr:"))?.split(":")[9];
  if (!fpr) throw new Error(`gpg made no key for ${uid}: ${stdout}`);
  return fpr;
}

/** Writes the public key `fpr` (binary OpenPGP) to `file`. */
export async function gpgExportKey(gnupgHome: string, fpr: string, file: string): Promise<void> {
  const { stdout } = await run("gpg", ["--batch", "--export", fpr], { env: { ...process.env, GNUPGHOME: gnupgHome }, encoding: "buffer", timeout: TIMEOUT });
  if (!stdout.length) throw new Error(`gpg exported nothing for ${fpr}`);
  await writeFile(file, stdout);
}

/** Kills the gpg-agent a GNUPGHOME started. */
export async function gpgStopAgent(gnupgHome: string): Promise<void> {
  await run("gpgconf", ["--kill", "gpg-agent"], { env: { ...process.env, GNUPGHOME: gnupgHome }, timeout: TIMEOUT }).catch(() => {});
}

export interface SkopeoSign {
  gnupgHome: string;
  fingerprint: string;
  /** --sign-identity: the docker reference written into the signature. */
  identity: string;
  /** docker://... references (plain http registries on loopback). */
  src: string;
  dest: string;
  /** A workdir for skopeo's registries.d (lookaside-staging) and policy. */
  workDir: string;
  /** Where skopeo writes signatures (lookaside-staging). */
  staging: string;
}

/** `skopeo copy --sign-by` from src to dest; the signature lands under `staging`. */
export async function skopeoCopySigned(o: SkopeoSign): Promise<void> {
  const regd = path.join(o.workDir, "skopeo-registries.d");
  await mkdir(regd, { recursive: true });
  await writeFile(path.join(regd, "staging.yaml"), `default-docker:\n  lookaside-staging: file://${o.staging}\n`);
  const policy = path.join(o.workDir, "skopeo-policy.json");
  await writeFile(policy, JSON.stringify({ default: [{ type: "insecureAcceptAnything" }] }));
  await run("skopeo", [
    "--policy", policy, "--registries.d", regd, "copy", "--src-tls-verify=false", "--dest-tls-verify=false",
    "--sign-by", o.fingerprint, "--sign-identity", o.identity, o.src, o.dest,
  ], { env: { ...process.env, GNUPGHOME: o.gnupgHome }, timeout: 120_000 });
}

export const SIGSTORE_LAYER_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json";

/** The simple-signing payload cosign signs. */
export function sigstorePayload(dockerReference: string, manifestDigest: string): Buffer {
  return Buffer.from(JSON.stringify({
    critical: { identity: { "docker-reference": dockerReference }, image: { "docker-manifest-digest": manifestDigest }, type: "cosign container image signature" },
    optional: null,
  }));
}

/**
 * Pushes a sigstore attachment for `manifestDigest` into `repo`: tag sha256-<hex>.sig, one layer
 * per signature. `payloadDigest` (default: manifestDigest) and `reference` let tests sign a
 * different digest or identity than the image's.
 */
export async function pushSigstoreSignature(t: PushTarget, repo: string, manifestDigest: string, key: KeyObject, reference: string, payloadDigest = manifestDigest): Promise<void> {
  const payload = sigstorePayload(reference, payloadDigest);
  const signature = cryptoSign(key.asymmetricKeyType === "ed25519" ? null : "sha256", payload, key).toString("base64");
  const layer: Blob = { digest: sha256(payload), size: payload.length, mediaType: SIGSTORE_LAYER_TYPE, data: payload };
  const cfgData = Buffer.from("{}");
  const config: Blob = { digest: sha256(cfgData), size: cfgData.length, mediaType: "application/vnd.oci.image.config.v1+json", data: cfgData };
  await pushBlob(t, repo, layer);
  await pushBlob(t, repo, config);
  const man = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
    layers: [{ mediaType: SIGSTORE_LAYER_TYPE, digest: layer.digest, size: layer.size, annotations: { "dev.cosignproject.cosign/signature": signature } }],
  }));
  await pushManifest(t, repo, `${manifestDigest.replace(":", "-")}.sig`, { digest: sha256(man), size: man.length, mediaType: "application/vnd.oci.image.manifest.v1+json", data: man });
}
