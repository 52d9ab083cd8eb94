// Image trust over the real socket: containers-policy.json with signedBy (GPG simple signing made
// by Debian's gnupg + skopeo, served from a lookaside over HTTP on 127.0.0.1) and sigstoreSigned
// (attachments built from the published format with a node:crypto ECDSA P-256 key), against a
// real berthd pulling from a loopback registry.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { copyFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { BERTHD, startBerthd, type Berthd } from "../lib/berthd.ts";
import { codeOf, grpc } from "../lib/cri-client.ts";
import { buildImage, buildIndex, layerBlob, type BuiltImage } from "../../hack/registry/oci-image.ts";
import { pushBlob, pushImage, pushManifest } from "../../hack/registry/push.ts";
import { startProxy, type RunningProxy } from "../../hack/registry/proxy.ts";
import { freePort, startRegistry, type RunningRegistry } from "../../hack/registry/registry.ts";
import { gpgExportKey, gpgGenerateKey, gpgStopAgent, pushSigstoreSignature, skopeoCopySigned } from "../../hack/registry/sign.ts";
import { serveDirectory, type StaticServer } from "../../hack/registry/static-server.ts";
import { buildTar } from "../../hack/registry/tar-writer.ts";

const run = promisify(execFile);
const MIRRORED = "mirror.berth.test";

/** A one-file image; `tag` makes the content (and so the digest) unique. */
const tinyImage = (tag: string): BuiltImage => buildImage([layerBlob(buildTar([{ name: "id", data: `${tag}\n`, mode: 0o644 }]))], { Cmd: ["/id"] });

describe("image trust (containers-policy.json)", () => {
  let work: string;
  let reg: RunningRegistry;
  let authReg: RunningRegistry;
  const creds = { username: "trust-user", password: "s3cret-pass" };
  let R: string; // registry address
  let lookaside: StaticServer;
  let mirror: RunningProxy; // counts what berth fetches through the mirror
  let b: Berthd;
  let metricsPort: number;
  let policyFile: string;
  let policyText: string;
  let staging: string;
  let gnupg: string;
  const digests: Record<string, string> = {};
  let plain: BuiltImage;
  let cosignKey: { privateKey: KeyObject; publicKey: KeyObject };
  let otherCosignKey: { privateKey: KeyObject; publicKey: KeyObject };

  const pull = (image: string, namespace?: string) => b.client.image.pullImage({
    image: { image },
    ...(namespace !== undefined ? { sandboxConfig: { metadata: { name: "p", uid: "u", namespace, attempt: 0 } } } : {}),
  });

  /** Asserts a FAILED_PRECONDITION naming the image, the scope and the reason, and that nothing of the image was stored. */
  async function refused(image: string, scope: string, reason: RegExp, namespace?: string) {
    const before = (await b.client.image.listImages({})).images.length;
    await assert.rejects(pull(image, namespace), (e: Error) => {
      assert.equal(codeOf(e), grpc.status.FAILED_PRECONDITION, e.message);
      assert.ok(e.message.includes(`image ${image}`), `names the image: ${e.message}`);
      assert.ok(e.message.includes(`scope ${scope}`), `names the scope ${scope}: ${e.message}`);
      assert.match(e.message, reason);
      return true;
    });
    assert.equal((await b.client.image.imageStatus({ image: { image } })).image, undefined, "the refused image is not recorded");
    assert.equal((await b.client.image.listImages({})).images.length, before);
  }

  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), "berth-trust-"));
    reg = await startRegistry();
    R = reg.address;
    const t = { address: R };
    authReg = await startRegistry({ htpasswd: creds });
    staging = path.join(work, "lookaside-staging");
    await mkdir(staging, { recursive: true });
    gnupg = path.join(work, "gnupg");

    // --- simple signing with gnupg + skopeo -----------------------------------------------
    const fprA = await gpgGenerateKey(gnupg, "berth trusted <trusted@berth.test>");
    const fprB = await gpgGenerateKey(gnupg, "berth other <other@berth.test>");
    await gpgExportKey(gnupg, fprA, path.join(work, "trusted.gpg"));
    await gpgExportKey(gnupg, fprB, path.join(work, "other.gpg"));
    const gpgSource = tinyImage("gpg-v1");
    await pushImage(t, "src/gpg", "v1", gpgSource);
    digests.gpg = gpgSource.manifest.digest;
    const sign = (fpr: string, dest: string, identity = `${R}/${dest}`) => skopeoCopySigned({
      gnupgHome: gnupg, fingerprint: fpr, identity, src: `docker://${R}/src/gpg:v1`, dest: `docker://${R}/${dest}`, workDir: work, staging,
    });
    await sign(fprA, "trust/gpg:v1");
    await sign(fprB, "trust/gpg-other:v1");
    await sign(fprA, "trust/gpg-ident:v1", `${R}/trust/elsewhere:v1`);
    // trust/gpg:v2 is another image; its lookaside holds v1's signature (a signature for another digest).
    const v2 = tinyImage("gpg-v2");
    await pushImage(t, "trust/gpg", "v2", v2);
    digests.gpgV2 = v2.manifest.digest;
    const hex = (d: string) => d.replace("sha256:", "");
    await mkdir(path.join(staging, "trust", `gpg@sha256=${hex(v2.manifest.digest)}`), { recursive: true });
    await copyFile(path.join(staging, "trust", `gpg@sha256=${hex(digests.gpg)}`, "signature-1"), path.join(staging, "trust", `gpg@sha256=${hex(v2.manifest.digest)}`, "signature-1"));
    plain = tinyImage("plain");
    await pushImage(t, "trust/plain", "v1", plain);
    await pushImage(t, "trust/changing", "v1", tinyImage("changing"));
    lookaside = await serveDirectory(staging);

    // --- sigstore attachments -------------------------------------------------------------
    cosignKey = generateKeyPairSync("ec", { namedCurve: "P-256" });
    otherCosignKey = generateKeyPairSync("ec", { namedCurve: "P-256" });
    await writeFile(path.join(work, "cosign.pub"), cosignKey.publicKey.export({ type: "spki", format: "pem" }));
    for (const name of ["signed", "other", "digest", "ident", "unsigned"]) {
      const img = tinyImage(`cosign-${name}`);
      await pushImage(t, `cosign/${name}`, "v1", img);
      digests[`cosign-${name}`] = img.manifest.digest;
    }
    await pushSigstoreSignature(t, "cosign/signed", digests["cosign-signed"]!, cosignKey.privateKey, `${R}/cosign/signed:v1`);
    await pushSigstoreSignature(t, "cosign/other", digests["cosign-other"]!, otherCosignKey.privateKey, `${R}/cosign/other:v1`);
    await pushSigstoreSignature(t, "cosign/digest", digests["cosign-digest"]!, cosignKey.privateKey, `${R}/cosign/digest:v1`, digests["cosign-signed"]);
    await pushSigstoreSignature(t, "cosign/ident", digests["cosign-ident"]!, cosignKey.privateKey, `${R}/cosign/elsewhere:v1`);
    // cosign itself signs the repository name without a tag: matchRepository accepts that, the default rule does not.
    for (const repo of ["cosign/repo-only", "cosign-repo/app"]) {
      const img = tinyImage(repo);
      await pushImage(t, repo, "v1", img);
      await pushSigstoreSignature(t, repo, img.manifest.digest, cosignKey.privateKey, `${R}/${repo}`);
    }
    // A registry that needs credentials: the attachment is read with the pull's AuthConfig.
    const at = { address: authReg.address, auth: creds };
    const authed = tinyImage("authed");
    await pushImage(at, "cosign/authed", "v1", authed);
    await pushSigstoreSignature(at, "cosign/authed", authed.manifest.digest, cosignKey.privateKey, `${authReg.address}/cosign/authed:v1`);
    // A multi-platform index signed as a whole (signatures cover the top-level manifest).
    const amd = tinyImage("index-amd64");
    const arm = buildImage([layerBlob(buildTar([{ name: "id", data: "arm\n", mode: 0o644 }]))], {}, { os: "linux", architecture: "arm64" });
    for (const img of [amd, arm]) for (const bl of img.blobs) await pushBlob(t, "cosign/index", bl);
    await pushManifest(t, "cosign/index", amd.manifest.digest, amd.manifest);
    await pushManifest(t, "cosign/index", arm.manifest.digest, arm.manifest);
    const index = buildIndex([{ image: amd, platform: { os: "linux", architecture: "amd64" } }, { image: arm, platform: { os: "linux", architecture: "arm64" } }]);
    await pushManifest(t, "cosign/index", "v1", index);
    await pushSigstoreSignature(t, "cosign/index", index.digest, cosignKey.privateKey, `${R}/cosign/index:v1`);
    digests.index = index.digest;
    digests.indexInstance = amd.manifest.digest;

    // --- berth's configuration --------------------------------------------------------------
    const hostsDir = path.join(work, "certs.d");
    await mkdir(path.join(hostsDir, R), { recursive: true });
    await writeFile(path.join(hostsDir, R, "hosts.toml"), `server = "http://${R}"\n`);
    await mkdir(path.join(hostsDir, MIRRORED), { recursive: true });
    mirror = await startProxy({ upstream: R });
    await writeFile(path.join(hostsDir, MIRRORED, "hosts.toml"), `server = "https://${MIRRORED}"\n[host."http://${mirror.address}"]\n  capabilities = ["pull", "resolve"]\n`);
    const regd = path.join(work, "registries.d");
    await mkdir(regd, { recursive: true });
    // Signatures are configured for the registry's own name only: the mirrored name finds them through the mirror's location.
    const closedPort = await freePort();
    await writeFile(path.join(regd, "berth.yaml"), [
      "docker:",
      `  ${R}:\n    lookaside: ${lookaside.url}\n    use-sigstore-attachments: true`,
      `  ${authReg.address}:\n    use-sigstore-attachments: true`,
      `  ${mirror.address}:\n    lookaside: ${lookaside.url}\n    use-sigstore-attachments: true`,
      // Credentials in a lookaside URL are sent, never shown.
      `  ${R}/creds:\n    lookaside: http://lookaside-user:lookaside-s3cret@127.0.0.1:${closedPort}/sigs`,
      "",
    ].join("\n"));
    const gpgA = { type: "signedBy", keyType: "GPGKeys", keyPath: path.join(work, "trusted.gpg") };
    const cosign = { type: "sigstoreSigned", keyPath: path.join(work, "cosign.pub") };
    const remap = { type: "remapIdentity", prefix: MIRRORED, signedPrefix: R };
    policyText = JSON.stringify({
      default: [{ type: "reject" }],
      transports: {
        docker: {
          [`${mirror.address}/trust`]: [{ type: "reject" }], // berth checks the name asked for, not the mirror's
          [`${R}/trust`]: [gpgA],
          [`${R}/cosign`]: [cosign],
          [`${R}/open`]: [{ type: "insecureAcceptAnything" }],
          [authReg.address]: [cosign],
          [`${R}/cosign-repo`]: [{ ...cosign, signedIdentity: { type: "matchRepository" } }],
          [`${R}/creds`]: [gpgA],
          [`${MIRRORED}/trust`]: [{ ...gpgA, signedIdentity: remap }],
          [`${MIRRORED}/cosign`]: [{ ...cosign, signedIdentity: remap }],
        },
      },
    }, null, 2);
    policyFile = path.join(work, "policy.json");
    await writeFile(policyFile, policyText);
    const nsDir = path.join(work, "policies");
    await mkdir(nsDir, { recursive: true });
    await writeFile(path.join(nsDir, "team-open.json"), JSON.stringify({ default: [{ type: "insecureAcceptAnything" }] }));
    metricsPort = await freePort();
    b = await startBerthd({
      toml: `[registry]\nconfig_path = "${hostsDir}"\nstall_timeout = 10\n[image]\nsignature_policy = "${policyFile}"\nsignature_policy_dir = "${nsDir}"\nregistries_d = "${regd}"\n[metrics]\naddress = "127.0.0.1:${metricsPort}"\n`,
    });
  });

  after(async () => {
    await b?.cleanup();
    await lookaside?.stop();
    await mirror?.stop();
    await reg?.stop();
    await authReg?.stop();
    if (gnupg) await gpgStopAgent(gnupg);
    if (work) await rm(work, { recursive: true, force: true });
  });

  test("simple signing: an image skopeo signed with the trusted GPG key is pulled", async () => {
    const { imageRef } = await pull(`${R}/trust/gpg:v1`);
    assert.match(imageRef, /^sha256:[0-9a-f]{64}$/);
    const st = await b.client.image.imageStatus({ image: { image: `${R}/trust/gpg:v1` } });
    assert.deepEqual(st.image?.repoDigests, [`${R}/trust/gpg@${digests.gpg}`]);
    assert.ok(lookaside.requests.some((u) => u.includes(`/trust/gpg@sha256=${digests.gpg!.slice(7)}/signature-1`)), "fetched from the lookaside");
  });

  test("simple signing: unsigned, other key, other digest and other identity are refused, naming why", async () => {
    await refused(`${R}/trust/plain:v1`, `transports.docker "${R}/trust"`, /: no signature: signedBy found no signature/);
    await refused(`${R}/trust/gpg-other:v1`, `transports.docker "${R}/trust"`, /: signed by an unknown key: .*signed by key [0-9A-F]{16}, which the policy does not trust/);
    await refused(`${R}/trust/gpg:v2`, `transports.docker "${R}/trust"`, new RegExp(`: digest mismatch: .*the signature is for manifest ${digests.gpg}, the image is ${digests.gpgV2}`));
    await refused(`${R}/trust/gpg-ident:v1`, `transports.docker "${R}/trust"`, new RegExp(`: identity mismatch: .*the signature is for "${R}/trust/elsewhere:v1"`));
  });

  test("hostile lookaside content: garbage is an invalid signature; too many signatures fail naming the limit", async () => {
    const t = { address: R };
    const garbage = tinyImage("garbage");
    await pushImage(t, "trust/garbage", "v1", garbage);
    const gdir = path.join(staging, "trust", `garbage@sha256=${garbage.manifest.digest.slice(7)}`);
    await mkdir(gdir, { recursive: true });
    await writeFile(path.join(gdir, "signature-1"), Buffer.from("\x90\x0d-----BEGIN PGP MESSAGE----- not really"));
    await refused(`${R}/trust/garbage:v1`, `transports.docker "${R}/trust"`, /: invalid signature: signedBy: not an OpenPGP message/);
    const many = tinyImage("many");
    await pushImage(t, "trust/many", "v1", many);
    const mdir = path.join(staging, "trust", `many@sha256=${many.manifest.digest.slice(7)}`);
    await mkdir(mdir, { recursive: true });
    for (let i = 1; i <= 65; i++) await writeFile(path.join(mdir, `signature-${i}`), "x");
    await assert.rejects(pull(`${R}/trust/many:v1`), (e: Error) => codeOf(e) === grpc.status.UNAVAILABLE && /holds more than 64 signatures/.test(e.message));
    assert.equal((await b.client.image.imageStatus({ image: { image: `${R}/trust/many:v1` } })).image, undefined);
  });

  test("sigstore: an attachment signed with the trusted ECDSA key is accepted; unsigned, other key, other digest and identity are refused", async () => {
    await pull(`${R}/cosign/signed:v1`);
    // By digest too (matchRepoDigestOrExact: a digest pull needs the repository to match).
    await pull(`${R}/cosign/signed@${digests["cosign-signed"]}`);
    const scope = `transports.docker "${R}/cosign"`;
    await refused(`${R}/cosign/unsigned:v1`, scope, /: no signature: sigstoreSigned found no signature/);
    await refused(`${R}/cosign/other:v1`, scope, /: signed by an unknown key: sigstoreSigned: no key the policy trusts verifies the signature/);
    await refused(`${R}/cosign/digest:v1`, scope, new RegExp(`: digest mismatch: sigstoreSigned: the signature is for manifest ${digests["cosign-signed"]}`));
    await refused(`${R}/cosign/ident:v1`, scope, new RegExp(`: identity mismatch: sigstoreSigned: the signature is for "${R}/cosign/elsewhere:v1"`));
  });

  test("sigstore: cosign's repository-only identity needs matchRepository", async () => {
    await refused(`${R}/cosign/repo-only:v1`, `transports.docker "${R}/cosign"`, new RegExp(`: identity mismatch: sigstoreSigned: the signature is for "${R}/cosign/repo-only", which matchRepoDigestOrExact does not accept`));
    await pull(`${R}/cosign-repo/app:v1`);
  });

  test("sigstore: an index is verified by its own digest before a platform is chosen", async () => {
    const { imageRef } = await pull(`${R}/cosign/index:v1`);
    const st = await b.client.image.imageStatus({ image: { image: imageRef } });
    assert.deepEqual(st.image?.repoDigests, [`${R}/cosign/index@${digests.index}`]);
    // The platform manifest alone carries no signature: pulling it by digest is refused (the image stays, pulled through the index).
    await assert.rejects(pull(`${R}/cosign/index@${digests.indexInstance}`), (e: Error) =>
      codeOf(e) === grpc.status.FAILED_PRECONDITION && e.message.includes(`scope transports.docker "${R}/cosign"`) && /: no signature/.test(e.message));
  });

  test("attachments are read with the pull's credentials; no credential appears in any error", async () => {
    const image = `${authReg.address}/cosign/authed:v1`;
    const auth = { username: creds.username, password: creds.password };
    const { imageRef } = await b.client.image.pullImage({ image: { image }, auth });
    assert.match(imageRef, /^sha256:/);
    await assert.rejects(b.client.image.pullImage({ image: { image: `${authReg.address}/cosign/absent:v1` }, auth }), (e: Error) => !e.message.includes(creds.password));
    // creds/*'s lookaside URL carries credentials and nothing listens there: the error names the URL without them.
    await pushImage({ address: R }, "creds/img", "v1", tinyImage("creds-img"));
    await assert.rejects(pull(`${R}/creds/img:v1`), (e: Error) => {
      assert.equal(codeOf(e), grpc.status.UNAVAILABLE, e.message);
      assert.match(e.message, /fetching signature http:\/\/127\.0\.0\.1:\d+\/sigs\/creds\/img@sha256=[0-9a-f]{64}\/signature-1 failed/);
      assert.ok(!e.message.includes("s3cret") && !e.message.includes("lookaside-user"), e.message);
      return true;
    });
  });

  test("the default requirement applies outside every scope; insecureAcceptAnything scopes accept", async () => {
    await pushImage({ address: R }, "open/img", "v1", tinyImage("open"));
    await pushImage({ address: R }, "elsewhere/img", "v1", tinyImage("elsewhere"));
    await pull(`${R}/open/img:v1`);
    await refused(`${R}/elsewhere/img:v1`, "default", /: rejected by the policy/);
  });

  test("through a hosts.toml mirror: signatures are found at the mirror's location and remapIdentity maps the name", async () => {
    const before = lookaside.requests.length;
    await pull(`${MIRRORED}/trust/gpg:v1`);
    assert.ok(lookaside.requests.slice(before).some((u) => u.startsWith("/trust/gpg@")), "the lookaside of the mirror's location was read");
    await pull(`${MIRRORED}/cosign/signed:v1`);
    await refused(`${MIRRORED}/trust/gpg-other:v1`, `transports.docker "${MIRRORED}/trust"`, /: signed by an unknown key/);
    const blobGets = () => [plain.config, ...plain.blobs].reduce((n, x) => n + mirror.blobGets(x.digest), 0);
    assert.equal(blobGets(), 0);
    await refused(`${MIRRORED}/trust/plain:v1`, `transports.docker "${MIRRORED}/trust"`, /: no signature: signedBy found no signature \(looked up http:\/\/127\.0\.0\.1:\d+\/trust\/plain@sha256=[0-9a-f]{64}\/signature-N\)/);
    assert.ok(mirror.requests.some((q) => q.path.endsWith("/trust/plain/manifests/v1")), "the manifest came through the mirror");
    assert.equal(blobGets(), 0, "refused before its config or any layer was fetched");
  });

  test("a per-namespace policy replaces the default for pulls made for that namespace", async () => {
    await refused(`${R}/trust/plain:v1`, `transports.docker "${R}/trust"`, /no signature/, "team-closed");
    const { imageRef } = await pull(`${R}/trust/plain:v1`, "team-open");
    assert.match(imageRef, /^sha256:/);
    // Present now, but the default policy still refuses it for other namespaces.
    await assert.rejects(pull(`${R}/trust/plain:v1`), (e: Error) => codeOf(e) === grpc.status.FAILED_PRECONDITION && /no signature/.test(e.message));
    await assert.rejects(pull(`${R}/trust/plain:v1`, "../team-open"), (e: Error) =>
      codeOf(e) === grpc.status.INVALID_ARGUMENT && e.message.includes("sandbox_config.metadata.namespace") && e.message.includes("../team-open"));
  });

  test("a policy change applies to the next pull, also of an image that is already present", async () => {
    const image = `${R}/trust/changing:v1`;
    const open = JSON.parse(policyText);
    open.transports.docker[`${R}/trust/changing`] = [{ type: "insecureAcceptAnything" }];
    try {
      await writeFile(policyFile, JSON.stringify(open));
      await pull(image);
      await pull(`${R}/trust/changing@${(await b.client.image.imageStatus({ image: { image } })).image!.repoDigests[0]!.split("@")[1]}`);
      await writeFile(policyFile, policyText); // back to: signedBy for trust/*
      await assert.rejects(pull(image), (e: Error) => codeOf(e) === grpc.status.FAILED_PRECONDITION && e.message.includes(`scope transports.docker "${R}/trust"`) && /no signature/.test(e.message));
      const digestRef = `${R}/trust/changing@${(await b.client.image.imageStatus({ image: { image } })).image!.repoDigests[0]!.split("@")[1]}`;
      await assert.rejects(pull(digestRef), (e: Error) => codeOf(e) === grpc.status.FAILED_PRECONDITION && /no signature/.test(e.message), "a present image pulled by digest is checked again");
      // A broken policy refuses pulls (fails closed) until it is fixed.
      await writeFile(policyFile, "{ not json");
      await assert.rejects(pull(`${R}/trust/gpg:v1`), (e: Error) => codeOf(e) === grpc.status.FAILED_PRECONDITION && e.message.includes(policyFile) && /invalid JSON/.test(e.message));
    } finally {
      await writeFile(policyFile, policyText);
    }
    await pull(`${R}/trust/gpg:v1`);
  });

  test("Status (verbose) says that verification is on and which policy applies", async () => {
    const st = await b.client.runtime.status({ verbose: true });
    const trust = JSON.parse(st.info["imageTrust"]!);
    assert.equal(trust.verification, "on");
    assert.equal(trust.policy, policyFile);
  });

  test("verified and refused pulls are counted by reason", async () => {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const value = (labels: string) => Number(new RegExp(`^berth_image_signature_checks_total\\{${labels}\\} (\\d+)`, "m").exec(text)?.[1] ?? "0");
    assert.ok(value('result="verified",reason=""') >= 4, text);
    assert.ok(value('result="accepted",reason=""') >= 2, text);
    for (const r of ["no_signature", "unknown_key", "digest_mismatch", "identity_mismatch", "rejected", "policy_error"]) {
      assert.ok(value(`result="refused",reason="${r}"`) >= 1, `refusals for ${r} counted`);
    }
  });

  test("unsupported policy entries stop config check and berthd, naming the file and key", async () => {
    const cfg = path.join(work, "check.toml");
    const check = async (policy: unknown) => {
      const f = path.join(work, "check-policy.json");
      await writeFile(f, JSON.stringify(policy));
      await writeFile(cfg, `[image]\nsignature_policy = "${f}"\nregistries_d = "${work}/registries.d"\n`);
      return run(BERTHD, ["config", "check", "--config", cfg]).then((r) => ({ code: 0, out: r.stdout + r.stderr }), (e) => ({ code: e.code as number, out: `${e.stdout}${e.stderr}` }));
    };
    const ok = await check({ default: [{ type: "reject" }], transports: { docker: { [`${R}/x`]: [{ type: "sigstoreSigned", keyPath: path.join(work, "cosign.pub") }] } } });
    assert.equal(ok.code, 0, ok.out);
    assert.match(ok.out, /image signature verification: on \(policy .*check-policy\.json; registries\.d .*registries\.d\)/);
    // (Every unsupported entry is covered by image-service/trust/trust.spec.ts; here the CLI path.)
    const bad = await check({ default: [{ type: "sigstoreSigned", keyPath: path.join(work, "cosign.pub"), fulcio: {} }] });
    assert.equal(bad.code, 1, bad.out);
    assert.match(bad.out, /berthd: signature policy .*check-policy\.json: key "default\[0\]\.fulcio" is not supported by berth/);
    // Without a policy nothing is read: not even a registries.d that does not parse.
    const brokenRegd = path.join(work, "broken-registries.d");
    await mkdir(brokenRegd);
    await writeFile(path.join(brokenRegd, "x.yaml"), "docker: [unclosed\n");
    await writeFile(cfg, `[image]\nregistries_d = "${brokenRegd}"\n`);
    const off = await run(BERTHD, ["config", "check", "--config", cfg]);
    assert.match(off.stdout, /image signature verification: off \(image\.signature_policy is unset\)/);
    // berthd itself refuses to start with that policy.
    const dir = path.join(work, "bad-start");
    await mkdir(dir);
    await assert.rejects(startBerthd({ dir, toml: `[image]\nsignature_policy = "${path.join(work, "check-policy.json")}"\n` }), /berthd exited with 1: .*key "default\[0\]\.fulcio" is not supported/s);
  });
});
