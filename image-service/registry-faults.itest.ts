// Pull behaviour against a real docker-registry with a counting, fault-injecting proxy in
// front: caching, single-flight, auth (basic and token), mirrors, tampering, resume, stalls.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import path from "node:path";
import { BerthError, Code } from "../oci-runtime/foundation/errdefs.ts";
import { createLogger } from "../oci-runtime/foundation/log.ts";
import { startRegistry, freePort, type RunningRegistry } from "../hack/registry/registry.ts";
import { type Fixtures, pushFixtures } from "../hack/registry/build-images.ts";
import { startProxy, type RunningProxy } from "../hack/registry/proxy.ts";
import { ImageService, type ImageServiceOptions } from "./image-service.ts";

const lines: string[] = [];
const log = createLogger({}, (l) => { lines.push(l); });
/** The log records with message `msg` since line `from`. */
const logged = (from: number, msg: string) => lines.slice(from).map((l) => JSON.parse(l) as Record<string, unknown>).filter((j) => j.msg === msg);
const HANDED_BACK = "layer download handed back to berthd";
const STAYS = "layer download stays with berthd";
/** The worker variants need unpack processes, which berthd runs only with more than one CPU. */
const withWorkers = (workers: boolean) => ({ skip: workers && availableParallelism() <= 1 ? "one CPU: no unpack processes" : false });

describe("registry behaviour through a proxy", () => {
  let reg: RunningRegistry;
  let fx: Fixtures;
  let dir: string;
  const cleanups: (() => Promise<void>)[] = [];
  let n = 0;

  const service = async (extra: Partial<ImageServiceOptions> = {}) => {
    const svc = new ImageService({ root: path.join(dir, `root-${n++}`), hostsDir: "", maxConcurrentDownloads: 3, stallTimeoutMs: 10_000, log, retry: { attempts: 3, backoffMs: 10 }, ...extra });
    await svc.init();
    return svc;
  };
  const proxy = async (opts: Omit<Parameters<typeof startProxy>[0], "upstream"> = {}, upstream = reg.address): Promise<RunningProxy> => {
    const p = await startProxy({ upstream, ...opts });
    cleanups.push(() => p.stop());
    return p;
  };
  const base = () => fx.single.image.blobs[0]!;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "berth-faults-"));
    reg = await startRegistry();
    fx = await pushFixtures({ address: reg.address });
  });
  after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
    await reg?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("a second pull fetches no blobs", async () => {
    const p = await proxy();
    const svc = await service();
    const ref = `${p.address}/${fx.multi.repo}:latest`;
    await svc.pull(ref);
    const first = p.requests.length;
    assert.ok(p.requests.some((r) => r.path.includes("/blobs/")));
    await svc.pull(ref);
    const second = p.requests.slice(first);
    assert.ok(second.length >= 1);
    assert.deepEqual(second.filter((r) => r.path.includes("/blobs/")), []);
  });

  it("a second pull by digest makes no request at all", async () => {
    const p = await proxy();
    const svc = await service();
    const ref = `${p.address}/${fx.multi.repo}@${fx.multi.manifestDigest}`;
    await svc.pull(ref);
    const first = p.requests.length;
    assert.ok(first > 0);
    assert.equal((await svc.pull(ref)).imageRef, fx.multi.configDigest);
    assert.equal(p.requests.length, first);
  });

  it("concurrent pulls download each blob once", async () => {
    const p = await proxy();
    const svc = await service();
    await Promise.all([
      svc.pull(`${p.address}/${fx.multi.repo}:latest`),
      svc.pull(`${p.address}/${fx.multi.repo}:latest`),
      svc.pull(`${p.address}/${fx.single.repo}:latest`), // shares the base layer
    ]);
    for (const b of fx.multi.image.blobs) assert.equal(p.blobGets(b.digest), 1, `blob ${b.digest}`);
  });

  // The proxy holds each blob GET until one more than the limit are in flight (or 700 ms), so the
  // downloads the limit allows overlap and one more would show. A layer's slot goes to the next
  // layer when its last byte is in: for an unpack process's own download at its "fetched", for
  // one berthd took over (cut short, resumed with a Range request) only once berthd sent the rest.
  for (const [workers, limit, cut] of [[false, 1, false], [false, 2, false], [true, 1, false], [true, 2, false], [true, 1, true], [false, 1, true]] as const) {
    it(`at most ${limit} layer download(s) at once${workers ? ", in unpack processes" : ""}${cut ? ", with one cut short and resumed by berthd" : ""}`, withWorkers(workers), async () => {
      const layers = fx.multi.image.blobs.filter((b) => b.digest !== fx.multi.configDigest);
      assert.equal(layers.length, 3);
      const p = await proxy({ blobHold: { until: limit + 1, maxMs: 700 }, ...(cut ? { cut: { digest: base().digest, afterBytes: 100_000, times: 1 } } : {}) });
      const svc = await service({ maxConcurrentDownloads: limit, ...(workers ? { unpackOnWorkersFrom: 0 } : {}) });
      const from = lines.length;
      assert.equal((await svc.pull(`${p.address}/${fx.multi.repo}:latest`)).imageRef, fx.multi.configDigest);
      assert.equal(p.peakBlobGets(), limit);
      for (const l of layers) assert.equal(p.blobGets(l.digest), l.digest === base().digest && cut ? 2 : 1, `layer ${l.digest}`);
      if (cut) assert.equal(p.requests.filter((r) => r.path.endsWith(base().digest))[1]?.range, "bytes=100000-");
      if (cut && workers) assert.deepEqual(logged(from, HANDED_BACK).map((j) => j.offset), [100_000]);
    });
  }

  for (const workers of [false, true]) it(`takes the missing layers largest first${workers ? " (unpack processes)" : ""}`, withWorkers(workers), async () => {
    const layers = fx.multi.image.blobs.filter((b) => b.digest !== fx.multi.configDigest);
    const sizes = new Set(layers.map((l) => l.size));
    assert.equal(sizes.size, layers.length, "the fixture's layers differ in size");
    const p = await proxy();
    const svc = await service({ maxConcurrentDownloads: 1, ...(workers ? { unpackOnWorkersFrom: 0 } : {}) });
    await svc.pull(`${p.address}/${fx.multi.repo}:latest`);
    const fetched = p.requests.filter((q) => q.method === "GET" && layers.some((l) => q.path.endsWith(`/blobs/${l.digest}`))).map((q) => q.path.split("/").at(-1));
    assert.deepEqual(fetched, [...layers].sort((a, b) => b.size - a.size).map((l) => l.digest));
    // With the first layer there already (the single image's base), only the other two are fetched, largest first.
    const p2 = await proxy();
    const svc2 = await service({ maxConcurrentDownloads: 1, ...(workers ? { unpackOnWorkersFrom: 0 } : {}) });
    await svc2.pull(`${p2.address}/${fx.single.repo}:latest`);
    await svc2.pull(`${p2.address}/${fx.multi.repo}:latest`);
    const second = p2.requests.filter((q) => q.method === "GET" && layers.some((l) => q.path.endsWith(`/blobs/${l.digest}`))).map((q) => q.path.split("/").at(-1));
    const rest = layers.filter((l) => l.digest !== base().digest).sort((a, b) => b.size - a.size).map((l) => l.digest);
    assert.deepEqual(second, [base().digest, ...rest]);
  });

  // With workers, the unpack process downloads the layer itself; berthd resumes what it cut short.
  for (const workers of [false, true]) it(`resumes a blob whose connection is cut, with a Range request${workers ? " (the unpack process's own download)" : ""}`, withWorkers(workers), async () => {
    const p = await proxy({ cut: { digest: base().digest, afterBytes: 100_000, times: 1 } });
    const svc = await service(workers ? { unpackOnWorkersFrom: 0 } : {});
    const from = lines.length;
    const { imageRef } = await svc.pull(`${p.address}/${fx.single.repo}:latest`);
    assert.equal(imageRef, fx.single.configDigest);
    const gets = p.requests.filter((r) => r.path.endsWith(base().digest));
    assert.equal(gets.length, 2);
    assert.equal(gets[1]!.range, "bytes=100000-");
    // With workers, the cut download was the process's own, and berthd took it up at that byte.
    assert.deepEqual(logged(from, HANDED_BACK).map((j) => [j.digest, j.offset]), workers ? [[base().digest, 100_000]] : []);
    assert.deepEqual(logged(from, STAYS), []);
  });

  for (const workers of [false, true]) it(`fails a stalled download naming the registry and blob${workers ? " (the unpack process's own download)" : ""}`, withWorkers(workers), async () => {
    const p = await proxy({ stall: { digest: base().digest } });
    const svc = await service({ stallTimeoutMs: 300, retry: { attempts: 2, backoffMs: 10 }, ...(workers ? { unpackOnWorkersFrom: 0 } : {}) });
    const from = lines.length;
    await assert.rejects(svc.pull(`${p.address}/${fx.single.repo}:latest`), (err: BerthError) => {
      assert.match(err.message, new RegExp(p.address.replace(/\./g, "\\.")));
      assert.ok(err.message.includes(base().digest), err.message);
      return true;
    });
    assert.deepEqual(svc.list(), []);
    // Two attempts either way: the process's own stalled GET counts as the first.
    assert.equal(p.blobGets(base().digest), 2);
    assert.deepEqual(logged(from, HANDED_BACK).filter((j) => j.digest === base().digest).map((j) => /stalled for 300 ms/.test(String(j.error))), workers ? [true] : []);
  });

  for (const workers of [false, true]) it(`falls through a mirror that fails and one that is down${workers ? " (layers downloaded by unpack processes)" : ""}`, withWorkers(workers), async () => {
    const broken = await proxy({ failWith: 500 });
    const dead = await freePort();
    const hostsDir = path.join(dir, `hosts${workers ? "-workers" : ""}`);
    await mkdir(path.join(hostsDir, "mirrored.berth.test"), { recursive: true });
    await writeFile(path.join(hostsDir, "mirrored.berth.test", "hosts.toml"), [
      `server = "http://${reg.address}"`,
      `[host."http://${broken.address}"]`, `  capabilities = ["pull", "resolve"]`,
      `[host."http://127.0.0.1:${dead}"]`, `  capabilities = ["pull", "resolve"]`,
    ].join("\n"));
    const svc = await service({ hostsDir, ...(workers ? { unpackOnWorkersFrom: 0 } : {}) });
    const from = lines.length;
    const { imageRef } = await svc.pull(`mirrored.berth.test/${fx.single.repo}:latest`);
    assert.equal(imageRef, fx.single.configDigest);
    assert.ok(broken.requests.length >= 1);
    assert.ok(svc.get(`mirrored.berth.test/${fx.single.repo}:latest`));
    // A failing mirror gets two tries at a blob either way: with workers, the process's own GET
    // is the first of them.
    assert.equal(broken.blobGets(base().digest), 2);
    assert.deepEqual(logged(from, HANDED_BACK).filter((j) => j.digest === base().digest).map((j) => [j.offset, /http 500/.test(String(j.error))]), workers ? [[0, true]] : []);
  });

  it("a mirror whose token endpoint refuses is passed over for the layers too (layers downloaded by unpack processes)", withWorkers(true), async () => {
    const guarded = await proxy({ token: { username: "tok", password: "not-given" } });
    const hostsDir = path.join(dir, "hosts-token-mirror");
    await mkdir(path.join(hostsDir, "tokmirror.berth.test"), { recursive: true });
    await writeFile(path.join(hostsDir, "tokmirror.berth.test", "hosts.toml"), [
      `server = "http://${reg.address}"`,
      `[host."http://${guarded.address}"]`, `  capabilities = ["pull", "resolve"]`,
    ].join("\n"));
    const svc = await service({ hostsDir, unpackOnWorkersFrom: 0 });
    const from = lines.length;
    const { imageRef } = await svc.pull(`tokmirror.berth.test/${fx.single.repo}:latest`);
    assert.equal(imageRef, fx.single.configDigest);
    assert.ok(guarded.tokenRequests.length >= 1, "the mirror was tried");
    assert.ok(guarded.tokenRequests.every((t) => !t.authorized));
    // The process could not be given a download; berthd's own passed over the mirror.
    assert.deepEqual(logged(from, STAYS).map((j) => j.digest), fx.single.image.blobs.filter((b) => b.digest !== fx.single.configDigest).map((b) => b.digest));
  });

  for (const workers of [false, true]) it(`a tampered blob fails the pull and leaves no image or content (${workers ? "unpacked in a worker process" : "unpacked in-process"})`, withWorkers(workers), async () => {
    const layer = fx.user.image.blobs[0]!; // shares the base layer: tamper a copy under its own repo instead
    const tamperedRepo = `berth/tampered-${workers ? "worker" : "inline"}`;
    const { pushLayerImage } = await import("../hack/registry/build-images.ts");
    // Uncompressed, and the byte flipped inside file data: only the digest check can notice.
    const img = await pushLayerImage({ address: reg.address }, tamperedRepo, [{ name: "secret", data: (workers ? "w" : "x").repeat(5000) }], "none");
    const digest = img.image.blobs[0]!.digest;
    assert.notEqual(digest, layer.digest);
    const file = path.join(reg.dir, "storage/docker/registry/v2/blobs/sha256", digest.slice(7, 9), digest.slice(7), "data");
    const data = await readFile(file);
    data[512 + 100] ^= 0x01;
    await writeFile(file, data);
    const svc = await service(workers ? { unpackOnWorkersFrom: 0 } : {});
    await assert.rejects(svc.pull(`${reg.address}/${tamperedRepo}:latest`), /blob sha256:[a-f0-9]{64} failed verification/);
    assert.deepEqual(svc.list(), []);
    const root = path.join(dir, `root-${n - 1}`);
    const blobs = await readdir(path.join(root, "content/blobs/sha256"));
    assert.ok(!blobs.includes(digest.slice(7)));
    assert.deepEqual((await readdir(path.join(root, "snapshots"))).filter((d) => d !== "containers" && d !== "empty"), []);
  });

  it("talks TLS to hosts.toml hosts with a ca file or skip_verify, and refuses an unknown ca", async () => {
    const key = path.join(dir, "tls.key");
    const cert = path.join(dir, "tls.crt");
    execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1",
      "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"], { stdio: "ignore" });
    const p = await proxy({ tls: { key: await readFile(key), cert: await readFile(cert) } });
    const hostsDir = path.join(dir, "hosts-tls");
    const write = async (domain: string, toml: string) => {
      await mkdir(path.join(hostsDir, domain), { recursive: true });
      await writeFile(path.join(hostsDir, domain, "hosts.toml"), toml);
    };
    await write("ca.berth.test", `server = "https://${p.address}"\nca = "${cert}"\n`);
    await write("skip.berth.test", `[host."https://${p.address}"]\n  skip_verify = true\n`);
    await write("strict.berth.test", `server = "https://${p.address}"\n`);
    const svc = await service({ hostsDir });
    await svc.pull(`ca.berth.test/${fx.single.repo}:latest`);
    await svc.pull(`skip.berth.test/${fx.user.repo}:latest`);
    await assert.rejects(svc.pull(`strict.berth.test/${fx.docker.repo}:latest`), /self[- ]signed|certificate/i);
  });

  it("answers NOT_FOUND for a missing tag, and refuses bad media types and platforms by name", async () => {
    const svc = await service();
    await assert.rejects(svc.pull(`${reg.address}/${fx.single.repo}:missing`), (err: BerthError) => {
      assert.equal(err.code, Code.NOT_FOUND);
      assert.match(err.message, /:missing not found/);
      return true;
    });
    const { buildImage, buildIndex, layerBlob } = await import("../hack/registry/oci-image.ts");
    const { buildTar } = await import("../hack/registry/tar-writer.ts");
    const { pushImage, pushManifest } = await import("../hack/registry/push.ts");
    const odd = { ...layerBlob(buildTar([{ name: "f", data: "x" }]), "gzip"), mediaType: "application/vnd.oci.image.layer.v1.tar+bzip2" };
    await pushImage({ address: reg.address }, "berth/odd", "latest", buildImage([odd]));
    await assert.rejects(svc.pull(`${reg.address}/berth/odd:latest`), /unsupported layer media type "application\/vnd\.oci\.image\.layer\.v1\.tar\+bzip2"/);
    const arm = buildImage([layerBlob(buildTar([{ name: "f", data: "arm" }]))], {}, { os: "linux", architecture: "arm64" });
    await pushImage({ address: reg.address }, "berth/armonly", arm.manifest.digest, arm);
    await pushManifest({ address: reg.address }, "berth/armonly", "latest", buildIndex([{ image: arm, platform: { os: "linux", architecture: "arm64" } }]));
    await assert.rejects(svc.pull(`${reg.address}/berth/armonly:latest`), /no manifest for platform linux\/amd64/);
    assert.deepEqual(svc.list(), []);
  });

  describe("basic auth", () => {
    let secure: RunningRegistry;
    const creds = { username: "berth", password: "s3cret-basic" };
    before(async () => {
      secure = await startRegistry({ htpasswd: creds });
      await pushFixtures({ address: secure.address, auth: creds });
    });
    after(async () => { await secure?.stop(); });

    it("pulls with the right credentials (AuthConfig and config.json)", async () => {
      const svc = await service();
      await svc.pull(`${secure.address}/berth/single:latest`, { username: creds.username, password: creds.password });
      const authFile = path.join(dir, "config.json");
      await writeFile(authFile, JSON.stringify({ auths: { [secure.address]: { auth: Buffer.from(`${creds.username}:${creds.password}`).toString("base64") } } }));
      const svc2 = await service({ authFile });
      await svc2.pull(`${secure.address}/berth/user:latest`);
      const svc3 = await service();
      await svc3.pull(`${secure.address}/berth/user:latest`, { auth: Buffer.from(`${creds.username}:${creds.password}`).toString("base64") });
    });

    it("gives the pull's credentials to the registry, never to a mirror that asks for them", async () => {
      const seen: string[] = [];
      const mirror = createServer((req, res) => {
        seen.push(req.headers.authorization ?? "");
        res.writeHead(401, { "www-authenticate": 'Basic realm="mirror"' }).end();
      });
      await new Promise<void>((r) => mirror.listen(0, "127.0.0.1", r));
      cleanups.push(() => new Promise((r) => { mirror.close(() => r()); }));
      const hostsDir = path.join(dir, "hosts-mirror-auth");
      await mkdir(path.join(hostsDir, secure.address), { recursive: true });
      await writeFile(path.join(hostsDir, secure.address, "hosts.toml"), [
        `server = "http://${secure.address}"`,
        `[host."http://127.0.0.1:${(mirror.address() as AddressInfo).port}"]`, `  capabilities = ["pull", "resolve"]`,
      ].join("\n"));
      const svc = await service({ hostsDir });
      const { imageRef } = await svc.pull(`${secure.address}/berth/single:latest`, { ...creds, serverAddress: secure.address });
      assert.ok(imageRef.startsWith("sha256:"));
      assert.ok(seen.length >= 1, "the mirror was asked first");
      assert.deepEqual(seen.filter((a) => a !== ""), [], "the mirror got no authorization header");
    });

    it("refuses wrong or missing credentials without leaking them", async () => {
      const svc = await service();
      const start = lines.length;
      await assert.rejects(svc.pull(`${secure.address}/berth/single:latest`, { username: creds.username, password: "wrong-pass-xyz" }), (err: BerthError) => {
        assert.equal(err.code, Code.UNAUTHENTICATED);
        assert.ok(!err.message.includes("wrong-pass-xyz"));
        return true;
      });
      await assert.rejects(svc.pull(`${secure.address}/berth/single:latest`), (err: BerthError) => err.code === Code.UNAUTHENTICATED);
      assert.ok(!lines.slice(start).join("").includes("wrong-pass-xyz"));
      assert.deepEqual(svc.list(), []);
    });
  });

  describe("token auth", () => {
    const creds = { username: "tok", password: "s3cret-token" };
    for (const workers of [false, true]) it(`gets a bearer token once per scope and pulls${workers ? " (layers downloaded by unpack processes, with berthd's token)" : ""}`, withWorkers(workers), async () => {
      const p = await proxy({ token: creds });
      const svc = await service(workers ? { unpackOnWorkersFrom: 0 } : {});
      const from = lines.length;
      await svc.pull(`${p.address}/${fx.multi.repo}:latest`, creds);
      assert.deepEqual([...logged(from, HANDED_BACK), ...logged(from, STAYS)], [], "every layer came from its process's own download");
      assert.deepEqual(p.tokenRequests, [{ scope: `repository:${fx.multi.repo}:pull`, authorized: true }]);
      // one GET per blob: an unpack process without the token would be refused and berthd would ask again
      for (const b of fx.multi.image.blobs) assert.equal(p.blobGets(b.digest), 1, `blob ${b.digest}`);
      await svc.pull(`${p.address}/${fx.single.repo}:latest`, creds);
      assert.equal(p.tokenRequests.length, 2);
    });

    it("gets anonymous tokens without credentials", async () => {
      const p = await proxy({ token: { ...creds, anonymous: true } });
      const svc = await service();
      await svc.pull(`${p.address}/${fx.single.repo}:latest`);
      assert.deepEqual(p.tokenRequests, [{ scope: `repository:${fx.single.repo}:pull`, authorized: true }]);
    });

    it("accepts access_token answers", async () => {
      const p = await proxy({ token: { ...creds, field: "access_token" } });
      const svc = await service();
      await svc.pull(`${p.address}/${fx.single.repo}:latest`, creds);
    });

    it("uses an identity (refresh) token and a registry token", async () => {
      const p = await proxy({ token: { ...creds, refreshToken: "refresh-abc" } });
      const svc = await service();
      await svc.pull(`${p.address}/${fx.single.repo}:latest`, { identityToken: "refresh-abc" });
      assert.deepEqual(p.tokenRequests, [{ scope: `repository:${fx.single.repo}:pull`, authorized: true }]);
      const res = await fetch(`http://${p.address}/token?scope=x`, { headers: { authorization: "Basic " + Buffer.from(`${creds.username}:${creds.password}`).toString("base64") } });
      const { token } = (await res.json()) as { token: string };
      const svc2 = await service();
      await svc2.pull(`${p.address}/${fx.user.repo}:latest`, { registryToken: token });
      assert.equal(p.tokenRequests.length, 2); // the registry token is used as is
    });

    it("refuses wrong credentials without leaking them", async () => {
      const p = await proxy({ token: creds });
      const svc = await service();
      await assert.rejects(svc.pull(`${p.address}/${fx.single.repo}:latest`, { ...creds, password: "bad-token-pw" }), (err: BerthError) => {
        assert.equal(err.code, Code.UNAUTHENTICATED);
        assert.ok(!err.message.includes("bad-token-pw"));
        return true;
      });
      assert.deepEqual(svc.list(), []);
    });
  });
});
