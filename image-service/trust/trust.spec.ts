// Policy scopes, signedIdentity rules, registries.d lookup and payload strictness.
import { test } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync, sign } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseReference } from "../reference.ts";
import { identityMatches, parseIdentity, pullIdentity, scopeCandidates, type SignedIdentity } from "./identity.ts";
import { type Requirement, parsePolicy, requirementsFor } from "./policy.ts";
import { loadRegistriesD, lookasideUrl, signatureStorage } from "./registries-d.ts";
import { checkSigstore, checkSimpleSigning, parsePayload } from "./verify.ts";

const D = `sha256:${"a".repeat(64)}`;
const D2 = `sha256:${"b".repeat(64)}`;

test("scopes go from the exact reference up to the host, then *.domain wildcards without the port", () => {
  assert.deepEqual(scopeCandidates(parseReference("reg.example.com:5000/ns/app:1")), [
    "reg.example.com:5000/ns/app:1", "reg.example.com:5000/ns/app", "reg.example.com:5000/ns", "reg.example.com:5000", "*.example.com", "*.com",
  ]);
  assert.deepEqual(scopeCandidates(parseReference(`busybox@${D}`)).slice(0, 3), [`docker.io/library/busybox@${D}`, "docker.io/library/busybox", "docker.io/library"]);
});

test("the most specific scope wins; then the transport default; then default", async () => {
  const p = await parsePolicy(JSON.stringify({
    default: [{ type: "reject" }],
    transports: { docker: {
      "r.io/a": [{ type: "insecureAcceptAnything" }],
      "r.io/a/b:1": [{ type: "reject" }],
      "*.io": [{ type: "insecureAcceptAnything" }],
    } },
  }), "p.json");
  assert.equal(requirementsFor(p, parseReference("r.io/a/b:1")).scope, 'transports.docker "r.io/a/b:1"');
  assert.equal(requirementsFor(p, parseReference("r.io/a/b:2")).scope, 'transports.docker "r.io/a"');
  assert.equal(requirementsFor(p, parseReference("x.io/c:2")).scope, 'transports.docker "*.io"');
  assert.equal(requirementsFor(p, parseReference("x.org/c:2")).scope, "default");
  const p2 = await parsePolicy(JSON.stringify({ default: [{ type: "reject" }], transports: { docker: { "": [{ type: "insecureAcceptAnything" }] } } }), "p.json");
  assert.equal(requirementsFor(p2, parseReference("x.org/c:2")).scope, 'transports.docker ""');
});

test("policy errors name the file and the key", async () => {
  await assert.rejects(parsePolicy("{}", "/p.json"), /signature policy \/p\.json: key "default" is required/);
  await assert.rejects(parsePolicy('{"default":[]}', "/p.json"), /key "default" must be a non-empty list/);
  await assert.rejects(parsePolicy('{"default":[{"type":"reject","x":1}]}', "/p.json"), /key "default\[0\]\.x" is not supported/);
  await assert.rejects(parsePolicy('{"default":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"rel.gpg"}]}', "/p.json"), /key "default\[0\]\.keyPath" must be an absolute path/);
  await assert.rejects(parsePolicy('{"default":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/nonexistent.gpg"}]}', "/p.json"), /names \/nonexistent\.gpg, which cannot be read \(ENOENT\)/);
  await assert.rejects(parsePolicy('{"default":[{"type":"sigstoreSigned","keyData":"AAAA","keyPath":"/k"}]}', "/p.json"), /must set exactly one of keyPath, keyPaths, keyData \(has keyPath, keyData\)/);
  await assert.rejects(parsePolicy('{"default":[{"type":"reject"}],"transports":{"docker":{"r.io/a":[{"type":"insecureAcceptAnything","signedIdentity":{"type":"matchExact"}}]}}}', "/p.json"),
    /key "transports\.docker\[r\.io\/a\]\[0\]\.signedIdentity" is not supported/);
  const pem = Buffer.from(generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ type: "spki", format: "pem" })).toString("base64");
  await assert.rejects(parsePolicy(JSON.stringify({ default: [{ type: "sigstoreSigned", keyData: pem, signedIdentity: { type: "remapIdentity", prefix: "r.io/A", signedPrefix: "s.io" } }] }), "/p.json"),
    /key "default\[0\]\.signedIdentity\.prefix" must be a registry host or a canonical repository/);
  const ok = await parsePolicy(JSON.stringify({ default: [{ type: "sigstoreSigned", keyData: pem, signedIdentity: { type: "exactRepository", dockerRepository: "r.io/x" } }] }), "/p.json");
  assert.equal(ok.default[0]!.type, "sigstoreSigned");
});

test("everything berth does not support is refused, naming the file and the key", async () => {
  const dir = await mkdtemp(path.join(tmpdir(), "berth-policy-"));
  try {
    const pub = path.join(dir, "cosign.pub");
    await writeFile(pub, generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ type: "spki", format: "pem" }));
    const cases: [unknown, RegExp][] = [
      [{ default: [{ type: "sigstoreSigned", keyPath: pub, fulcio: {} }] }, /key "default\[0\]\.fulcio" is not supported/],
      [{ default: [{ type: "sigstoreSigned", keyPath: pub, rekorPublicKeyPath: "/x" }] }, /key "default\[0\]\.rekorPublicKeyPath" is not supported/],
      [{ default: [{ type: "sigstoreSigned", keyPath: pub, rekorPublicKeyData: "AA==" }] }, /key "default\[0\]\.rekorPublicKeyData" is not supported/],
      [{ default: [{ type: "reject" }], transports: { "docker-daemon": { "": [{ type: "insecureAcceptAnything" }] } } }, /key "transports\.docker-daemon" names the "docker-daemon" transport/],
      [{ default: [{ type: "signedBaseLayer", baseLayerIdentity: {} }] }, /key "default\[0\]\.type" is signedBaseLayer/],
      [{ default: [{ type: "signedBy", keyType: "X509Certificates", keyPath: pub }] }, /key "default\[0\]\.keyType" must be "GPGKeys"/],
      [{ default: [{ type: "signedBy", keyType: "GPGKeys", keyPath: pub }] }, /key "default\[0\]" names .*cosign\.pub, which holds no readable OpenPGP public key/],
      [{ default: [{ type: "sigstoreSigned", keyPath: pub, signedIdentity: { type: "matchFoo" } }] }, /key "default\[0\]\.signedIdentity\.type" names an unknown signedIdentity type "matchFoo"/],
      [{ default: [{ type: "reject" }], transports: { docker: { "docker.io/busybox": [{ type: "reject" }] } } }, /key "transports\.docker\[docker\.io\/busybox\]" is not a valid scope: "docker\.io\/busybox" is not in canonical form/],
      [{ default: [{ type: "reject" }], bogus: 1 }, /key "\(top level\)\.bogus" is not supported/],
    ];
    for (const [policy, re] of cases) {
      await assert.rejects(parsePolicy(JSON.stringify(policy), "/etc/p.json"), (e: Error) => re.test(e.message) && e.message.startsWith("signature policy /etc/p.json: "));
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("signedIdentity rules follow containers-policy.json(5)", () => {
  const tag = pullIdentity(parseReference("r.io/a/b:1"));
  const dig = pullIdentity(parseReference(`r.io/a/b@${D}`));
  const s = (x: string) => parseIdentity(x)!;
  const m = (rule: SignedIdentity, intended: typeof tag, signed: string) => identityMatches(rule, intended, s(signed));
  const def: SignedIdentity = { type: "matchRepoDigestOrExact" };
  assert.equal(m(def, tag, "r.io/a/b:1"), true);
  assert.equal(m(def, tag, "r.io/a/b:2"), false);
  assert.equal(m(def, tag, "r.io/a/b"), false, "a name-only signature matches no tag");
  assert.equal(m(def, dig, "r.io/a/b:anything"), true, "a digest pull needs only the repository");
  assert.equal(m(def, dig, "r.io/a/c:1"), false);
  assert.equal(m({ type: "matchExact" }, dig, "r.io/a/b:1"), false);
  assert.equal(m({ type: "matchExact" }, tag, "r.io/a/b:1"), true);
  assert.equal(m({ type: "matchRepository" }, tag, "r.io/a/b:9"), true);
  assert.equal(m({ type: "exactReference", dockerReference: "s.io/x:1" }, tag, "s.io/x:1"), true);
  assert.equal(m({ type: "exactReference", dockerReference: "s.io/x:1" }, tag, "s.io/x:2"), false);
  assert.equal(m({ type: "exactRepository", dockerRepository: "s.io/x" }, tag, "s.io/x:7"), true);
  const remap: SignedIdentity = { type: "remapIdentity", prefix: "r.io/a", signedPrefix: "s.io/z" };
  assert.equal(m(remap, tag, "s.io/z/b:1"), true);
  assert.equal(m(remap, tag, "r.io/a/b:1"), false);
  assert.equal(m(remap, pullIdentity(parseReference("r.io/ab:1")), "s.io/zb:1"), false, "prefixes end at a component boundary");
  assert.equal(m(remap, pullIdentity(parseReference("r.io/ab:1")), "r.io/ab:1"), true, "no remap: matchRepoDigestOrExact");
  assert.equal(m(def, pullIdentity(parseReference("busybox:1")), "docker.io/library/busybox:1"), true, "signatures are normalised");
});

test("payloads are parsed strictly", () => {
  const good = { critical: { identity: { "docker-reference": "r.io/a:1" }, image: { "docker-manifest-digest": D }, type: "atomic container signature" }, optional: { creator: "x" } };
  const enc = (o: unknown) => Buffer.from(JSON.stringify(o));
  assert.equal(parsePayload(enc(good), "atomic container signature")?.digest, D);
  assert.equal(parsePayload(enc(good), "cosign container image signature"), undefined, "type must match the format");
  assert.equal(parsePayload(enc({ ...good, extra: 1 }), "atomic container signature"), undefined);
  assert.equal(parsePayload(enc({ ...good, critical: { ...good.critical, more: 1 } }), "atomic container signature"), undefined);
  assert.equal(parsePayload(enc({ ...good, critical: { ...good.critical, image: { "docker-manifest-digest": "sha256:xyz" } } }), "atomic container signature"), undefined);
  assert.equal(parsePayload(Buffer.from("not json"), "atomic container signature"), undefined);
});

test("sigstore: the key, then the digest, then the identity", () => {
  const k = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const other = generateKeyPairSync("ed25519");
  const payload = Buffer.from(JSON.stringify({ critical: { identity: { "docker-reference": "r.io/a:1" }, image: { "docker-manifest-digest": D }, type: "cosign container image signature" }, optional: null }));
  const sig = sign("sha256", payload, k.privateKey).toString("base64");
  const intended = pullIdentity(parseReference("r.io/a:1"));
  const rule: SignedIdentity = { type: "matchRepoDigestOrExact" };
  assert.deepEqual(checkSigstore(payload, sig, [other.publicKey, k.publicKey], D, rule, intended), { ok: true });
  assert.equal(checkSigstore(payload, sig, [other.publicKey], D, rule, intended).reason, "unknown_key");
  assert.equal(checkSigstore(payload, sig, [k.publicKey], D2, rule, intended).reason, "digest_mismatch");
  assert.equal(checkSigstore(payload, sig, [k.publicKey], D, rule, pullIdentity(parseReference("r.io/a:2"))).reason, "identity_mismatch");
  assert.equal(checkSigstore(payload, "!!", [k.publicKey], D, rule, intended).reason, "invalid_signature");
  const tampered = Buffer.from(payload.toString().replace("r.io/a:1", "r.io/a:2"));
  assert.equal(checkSigstore(tampered, sig, [k.publicKey], D, rule, intended).reason, "unknown_key", "a changed payload verifies with no key");
});

test("sigstore: Ed25519 and RSA keys verify too", () => {
  const payload = Buffer.from(JSON.stringify({ critical: { identity: { "docker-reference": "r.io/a:1" }, image: { "docker-manifest-digest": D }, type: "cosign container image signature" } }));
  const intended = pullIdentity(parseReference("r.io/a:1"));
  const ed = generateKeyPairSync("ed25519");
  const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
  assert.deepEqual(checkSigstore(payload, sign(null, payload, ed.privateKey).toString("base64"), [ed.publicKey], D, { type: "matchRepoDigestOrExact" }, intended), { ok: true });
  assert.deepEqual(checkSigstore(payload, sign("sha256", payload, rsa.privateKey).toString("base64"), [rsa.publicKey], D, { type: "matchRepoDigestOrExact" }, intended), { ok: true });
});

test("simple signing: an armored keyData policy verifies an OpenPGP signed message; unknown keys and double signatures are refused", async () => {
  const pgp = await import("openpgp");
  const gen = () => pgp.generateKey({ type: "ecc", curve: "ed25519Legacy", userIDs: [{ name: "t", email: "t@berth.test" }], format: "object" });
  const a = await gen();
  const other = await gen();
  const body = new Uint8Array(Buffer.from(JSON.stringify({ critical: { identity: { "docker-reference": "r.io/a:1" }, image: { "docker-manifest-digest": D }, type: "atomic container signature" }, optional: {} })));
  const signWith = async (...keys: typeof a.privateKey[]) => (await pgp.sign({ message: await pgp.createMessage({ binary: body }), signingKeys: keys, format: "binary" })) as Uint8Array;
  const policy = await parsePolicy(JSON.stringify({ default: [{ type: "signedBy", keyType: "GPGKeys", keyData: Buffer.from(a.publicKey.armor()).toString("base64") }] }), "/p.json");
  assert.equal(policy.default[0]!.type, "signedBy");
  const req = policy.default[0] as Extract<Requirement, { type: "signedBy" }>;
  const intended = pullIdentity(parseReference("r.io/a:1"));
  assert.deepEqual(await checkSimpleSigning(await signWith(a.privateKey), req.keys, D, req.identity, intended), { ok: true });
  assert.equal((await checkSimpleSigning(await signWith(other.privateKey), req.keys, D, req.identity, intended)).reason, "unknown_key");
  assert.equal((await checkSimpleSigning(await signWith(a.privateKey, other.privateKey), req.keys, D, req.identity, intended)).reason, "invalid_signature");
  assert.equal((await checkSimpleSigning(await signWith(a.privateKey), req.keys, D2, req.identity, intended)).reason, "digest_mismatch");
});

test("registries.d: the first scope that sets a field wins, then default-docker; the lookaside layout is <base>/<path>@sha256=<hex>/signature-N", async () => {
  const dir = await mkdtemp(path.join(tmpdir(), "berth-regd-"));
  try {
    await writeFile(path.join(dir, "a.yaml"), "default-docker:\n  lookaside: https://sigs.example/default\ndocker:\n  r.io/ns:\n    use-sigstore-attachments: true\n  r.io:\n    lookaside: http://127.0.0.1:1/sigs/\n    lookaside-staging: file:///tmp/x\n");
    await writeFile(path.join(dir, "b.yaml"), "# only comments\n");
    const d = await loadRegistriesD(dir);
    const r = parseReference("r.io/ns/app:1");
    const s = signatureStorage(d, r);
    assert.equal(s.useSigstoreAttachments, true);
    assert.equal(lookasideUrl(s.lookaside!, r, D, 2).href, `http://127.0.0.1:1/sigs/ns/app@sha256=${"a".repeat(64)}/signature-2`);
    const other = signatureStorage(d, parseReference("q.io/x:1"));
    assert.equal(other.lookaside?.href, "https://sigs.example/default");
    assert.equal(other.useSigstoreAttachments, false);
    await writeFile(path.join(dir, "c.yaml"), "docker:\n  r.io:\n    lookaside: http://x/\n");
    await assert.rejects(loadRegistriesD(dir), /scope "r\.io" is configured twice/);
    await writeFile(path.join(dir, "c.yaml"), "docker:\n  q.io:\n    sigstore-attachments: true\n");
    await assert.rejects(loadRegistriesD(dir), /c\.yaml: key "docker\.q\.io\.sigstore-attachments" is not supported/);
    await writeFile(path.join(dir, "c.yaml"), "docker:\n  q.io:\n    lookaside: ftp://x/\n");
    await assert.rejects(loadRegistriesD(dir), /must be an http, https or file URL, got "ftp:\/\/x\/"/);
    assert.deepEqual((await loadRegistriesD(path.join(dir, "missing"))).docker.size, 0, "a missing directory is an empty configuration");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("a FIFO as a key file, a policy or a lookaside signature is refused at once, naming the path", async () => {
  const { execFileSync } = await import("node:child_process");
  const { mkdir } = await import("node:fs/promises");
  const { ImageTrust } = await import("./trust.ts");
  const { loadPolicy } = await import("./policy.ts");
  const { createLogger } = await import("../../oci-runtime/foundation/log.ts");
  const openpgp = await import("openpgp");
  const dir = await mkdtemp(path.join(tmpdir(), "berth-fifo-"));
  try {
    const fifoKey = path.join(dir, "key.gpg");
    execFileSync("mkfifo", [fifoKey]);
    const started = Date.now();
    await assert.rejects(parsePolicy(JSON.stringify({ default: [{ type: "signedBy", keyType: "GPGKeys", keyPath: fifoKey }] }), "/p.json"),
      (err: Error) => err.message.includes(`names ${fifoKey}, which cannot be read (a fifo`));
    const fifoPolicy = path.join(dir, "policy-fifo.json");
    execFileSync("mkfifo", [fifoPolicy]);
    await assert.rejects(loadPolicy(fifoPolicy), (err: Error) => err.message.includes(`${fifoPolicy} cannot be read (a fifo`));

    const { publicKey } = await openpgp.generateKey({ userIDs: [{ name: "berth test" }], format: "armored" });
    const pub = path.join(dir, "pub.gpg");
    await writeFile(pub, publicKey);
    const policy = path.join(dir, "policy.json");
    await writeFile(policy, JSON.stringify({ default: [{ type: "signedBy", keyType: "GPGKeys", keyPath: pub }] }));
    const registriesD = path.join(dir, "registries.d");
    await mkdir(registriesD);
    await writeFile(path.join(registriesD, "a.yaml"), `default-docker:\n  lookaside: file://${dir}/sigs\n`);
    const sigDir = path.join(dir, "sigs", "ns", `app@sha256=${"a".repeat(64)}`);
    await mkdir(sigDir, { recursive: true });
    const fifoSig = path.join(sigDir, "signature-1");
    execFileSync("mkfifo", [fifoSig]);
    const trust = new ImageTrust({ policy, policyDir: "", registriesD, hostsDir: "", timeoutMs: 2_000, log: createLogger({}, () => {}) }, undefined);
    await assert.rejects(trust.check(parseReference("r.io/ns/app:1"), D, undefined), (err: Error) => {
      assert.ok(err.message.includes(fifoSig) && /a fifo/.test(err.message), err.message);
      return true;
    });
    assert.ok(Date.now() - started < 5_000, "refused at once, not after waiting on the FIFO");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
