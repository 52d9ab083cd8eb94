// The registry client against a hostile loopback HTTP registry: every manifest (by reference
// and as an index's child) and every small blob is checked with its digest's own algorithm.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { BerthError, Code } from "../../oci-runtime/foundation/errdefs.ts";
import { createLogger } from "../../oci-runtime/foundation/log.ts";
import { parseReference } from "../reference.ts";
import { RegistryClient } from "./client.ts";

const log = createLogger({}, () => {});
const digestOf = (alg: string, b: Buffer) => `${alg}:${createHash(alg).update(b).digest("hex")}`;
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const manifest = (tag: string) => Buffer.from(JSON.stringify({
  schemaVersion: 2, mediaType: OCI_MANIFEST,
  config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: `sha256:${"c".repeat(64)}`, size: 2 },
  layers: [], annotations: { tag },
}));

describe("registry client digest verification", () => {
  let server: Server;
  let address = "";
  const good = manifest("good");
  const evil = manifest("evil"); // same size as good: only the digest can tell them apart
  const blob = Buffer.from("config-bytes");
  const requests: string[] = [];
  const client = () => new RegistryClient({ hostsDir: "", stallTimeoutMs: 5_000, log, attempts: 1, backoffMs: 1 });

  before(async () => {
    assert.equal(good.length, evil.length);
    server = createServer((req, res) => {
      requests.push(req.url ?? "");
      if (req.url === "/v2/") { res.writeHead(200).end(); return; }
      // Whatever manifest is asked for, the evil one comes back; blobs are tampered too.
      if (req.url?.includes("/manifests/")) { res.writeHead(200, { "content-type": OCI_MANIFEST, "content-length": evil.length }).end(evil); return; }
      if (req.url?.includes("/blobs/")) { const b = Buffer.from("CONFIG-bytes"); res.writeHead(200, { "content-length": b.length }).end(b); return; }
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => { await new Promise((r) => server.close(r)); });

  it("refuses a manifest that does not match a sha512 reference", async () => {
    const ref = parseReference(`${address}/berth/app@${digestOf("sha512", good)}`);
    await assert.rejects(client().resolve(ref), (err: BerthError) => {
      assert.match(err.message, /does not match its digest sha512:[a-f0-9]{128}/);
      return true;
    });
  });

  it("accepts the right body for a sha512 reference", async () => {
    const ref = parseReference(`${address}/berth/app@${digestOf("sha512", evil)}`);
    const m = await client().resolve(ref);
    assert.deepEqual(m.body, evil);
    assert.equal(m.digest, digestOf("sha256", evil));
  });

  it("refuses a swapped index child with a sha512 or sha256 descriptor", async () => {
    const ref = parseReference(`${address}/berth/app:latest`);
    for (const alg of ["sha512", "sha256"]) {
      const desc = { mediaType: OCI_MANIFEST, digest: digestOf(alg, good), size: good.length };
      await assert.rejects(client().fetchManifest(ref, desc), (err: BerthError) => {
        assert.ok(err.message.includes(`does not match its digest ${desc.digest}`), err.message);
        return true;
      });
    }
  });

  it("refuses a descriptor digest in an algorithm it cannot verify, naming it, before any request", async () => {
    const ref = parseReference(`${address}/berth/app:latest`);
    const before = requests.length;
    for (const digest of [`md5:${"a".repeat(32)}`, `sha256:${"a".repeat(63)}`, "sha512:zz", "../../x"]) {
      const desc = { mediaType: OCI_MANIFEST, digest, size: good.length };
      await assert.rejects(client().fetchManifest(ref, desc), (err: BerthError) => {
        assert.equal(err.code, Code.INVALID_ARGUMENT);
        assert.ok(err.message.includes(JSON.stringify(digest)), err.message);
        return true;
      });
      await assert.rejects(client().fetchSmallBlob(ref, { ...desc, size: 1 }), (err: BerthError) => err.code === Code.INVALID_ARGUMENT && err.message.includes(JSON.stringify(digest)));
    }
    assert.equal(requests.length, before);
  });

  it("refuses a small blob whose sha512 digest does not match", async () => {
    const ref = parseReference(`${address}/berth/app:latest`);
    await assert.rejects(client().fetchSmallBlob(ref, { mediaType: "application/octet-stream", digest: digestOf("sha512", blob), size: blob.length }), /does not match its digest/);
  });
});
