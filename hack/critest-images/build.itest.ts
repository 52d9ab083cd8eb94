// Builds the stand-in images, pushes them to a loopback docker-registry, checks
// what the registry serves, and runs two of them with runc to check what a
// process inside observes (root, docker-registry, skopeo and runc needed).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { buildStandInImages, pushStandInImages, type BuiltImages } from "./build.ts";
import { startRegistry, type RunningRegistry } from "../registry/registry.ts";
import { CRI_TOOLS, E2E } from "./images.ts";
import { findExecutable } from "../../oci-runtime/foundation/executable.ts";

const have = (cmd: string) => findExecutable(cmd) !== undefined;
const missing = ["docker-registry", "skopeo", "runc", "apt-get"].filter((c) => !have(c));
const skip = process.getuid?.() !== 0 ? "needs root" : missing.length > 0 ? `needs ${missing.join(", ")}` : false;

let reg: RunningRegistry;
let built: BuiltImages;
let work: string;

const ACCEPT = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

async function getJson(path: string): Promise<{ body: any; digest: string | null }> {
  const res = await fetch(`http://${reg.address}${path}`, { headers: { accept: ACCEPT } });
  assert.equal(res.status, 200, `GET ${path}`);
  return { body: await res.json(), digest: res.headers.get("docker-content-digest") };
}

async function resolve(ref: string): Promise<{ indexDigest: string; manifest: any; config: any }> {
  const [repo, tag] = ref.split(":") as [string, string];
  const index = await getJson(`/v2/${repo}/manifests/${tag}`);
  assert.equal(index.body.mediaType, "application/vnd.oci.image.index.v1+json");
  assert.deepEqual(index.body.manifests.map((m: any) => m.platform), [{ architecture: "amd64", os: "linux" }]);
  const manifest = (await getJson(`/v2/${repo}/manifests/${index.body.manifests[0].digest}`)).body;
  const config = (await getJson(`/v2/${repo}/blobs/${manifest.config.digest}`)).body;
  return { indexDigest: index.digest!, manifest, config };
}

/** Unpacks an image's layers from the registry into a rootfs directory. */
async function unpack(ref: string, dir: string): Promise<any> {
  const { manifest, config } = await resolve(ref);
  const repo = ref.split(":")[0]!;
  mkdirSync(dir, { recursive: true });
  for (const layer of manifest.layers) {
    const res = await fetch(`http://${reg.address}/v2/${repo}/blobs/${layer.digest}`);
    const file = join(work, `${layer.digest.slice(7)}.tgz`);
    writeFileSync(file, Buffer.from(await res.arrayBuffer()));
    execFileSync("tar", ["-xzpf", file, "-C", dir]);
  }
  return config;
}

/** Runs args in the rootfs with runc as uid, returns stdout. */
function runc(rootfs: string, args: string[], opts: { uid?: number; noNewPrivileges?: boolean; maskedPaths?: string[] } = {}): string {
  const bundle = mkdtempSync(join(work, "bundle-"));
  execFileSync("runc", ["spec"], { cwd: bundle });
  const spec = JSON.parse(execFileSync("cat", [join(bundle, "config.json")], { encoding: "utf8" }));
  spec.root = { path: rootfs, readonly: false };
  spec.process.terminal = false;
  spec.process.args = args;
  spec.process.user = { uid: opts.uid ?? 0, gid: opts.uid ?? 0 };
  spec.process.noNewPrivileges = opts.noNewPrivileges ?? false;
  spec.linux.maskedPaths = [...spec.linux.maskedPaths, ...(opts.maskedPaths ?? [])];
  writeFileSync(join(bundle, "config.json"), JSON.stringify(spec));
  const id = `berth-critest-img-${randomBytes(4).toString("hex")}`;
  try {
    const r = spawnSync("runc", ["--root", join(work, "runc"), "run", id], { cwd: bundle, encoding: "utf8", timeout: 30_000 });
    return r.stdout + r.stderr;
  } finally {
    spawnSync("runc", ["--root", join(work, "runc"), "delete", "-f", id]);
  }
}

before(async () => {
  if (skip) return;
  work = mkdtempSync(join(tmpdir(), "berth-critest-images-itest-"));
  built = await buildStandInImages();
  reg = await startRegistry();
  await pushStandInImages(built, reg.address);
});

after(async () => {
  if (skip) return;
  await reg?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

test("every critest repository path is served as a linux/amd64 index", { skip }, async () => {
  const catalog = (await getJson("/v2/_catalog")).body.repositories as string[];
  for (const repo of [`${E2E}/busybox`, `${E2E}/nginx`, `${E2E}/httpd`, `${E2E}/nonewprivs`, `${CRI_TOOLS}/hostnet-nginx-amd64`,
    `${CRI_TOOLS}/test-image-user-uid`, `${CRI_TOOLS}/test-image-predefined-group`, `${CRI_TOOLS}/test-image-tags`]) {
    assert.ok(catalog.includes(repo), `${repo} in catalog`);
  }
  for (const img of built.images) await resolve(img.ref);
});

test("tags of test-image-tags share one image; test-image-tag:test and :all differ", { skip }, async () => {
  const tags = await Promise.all([1, 2, 3].map((t) => resolve(`${CRI_TOOLS}/test-image-tags:${t}`)));
  assert.equal(new Set(tags.map((t) => t.indexDigest)).size, 1);
  const [a, b] = await Promise.all([resolve(`${CRI_TOOLS}/test-image-tag:test`), resolve(`${CRI_TOOLS}/test-image-tag:all`)]);
  assert.notEqual(a.indexDigest, b.indexDigest);
});

test("user images carry the USER critest expects", { skip }, async () => {
  const want: Record<string, string> = {
    "test-image-user-uid": "1002", "test-image-user-username": "www-data",
    "test-image-user-uid-group": "1003:1004", "test-image-user-username-group": "www-data:1004", "test-image-predefined-group": "1000",
  };
  for (const [name, user] of Object.entries(want)) {
    assert.equal((await resolve(`${CRI_TOOLS}/${name}:latest`)).config.config.User, user, name);
  }
});

test("nonewprivs prints the effective uid a setuid-root program gets", { skip }, async () => {
  const root = join(work, "nnp");
  const config = await unpack(`${E2E}/nonewprivs:1.3`, root);
  assert.deepEqual(config.config.Entrypoint, ["/usr/local/bin/nnp"]);
  assert.equal(runc(root, ["/usr/local/bin/nnp"], { uid: 1000, noNewPrivileges: false }), "Effective uid: 0\n");
  assert.equal(runc(root, ["/usr/local/bin/nnp"], { uid: 1000, noNewPrivileges: true }), "Effective uid: 1000\n");
});

test("busybox execs applets (a masked /bin/ls is refused) and has ipcs and pgrep", { skip }, async () => {
  const root = join(work, "busybox");
  await unpack(`${E2E}/busybox:1.29-2`, root);
  assert.equal(runc(root, ["/bin/sh", "-c", "ls"], { maskedPaths: ["/bin/ls"] }), "/bin/sh: ls: Permission denied\n");
  // The background child is "sh" until it has exec'd sleep: pgrep asks again, at most 500 times
  // (CI once ran pgrep before that exec).
  assert.match(runc(root, ["sh", "-c", "sleep 30 & i=0; until pgrep sleep; do i=$((i+1)); [ $i -lt 500 ] || break; done; ipcs -m | head -2; kill %1"]), /^\d+\n\n------ Shared Memory Segments --------\n/);
});
