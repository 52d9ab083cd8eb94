// Builds the stand-in images critest pulls (see images.ts) into an OCI layout
// and pushes them to a registry under critest's repository paths.
//
//   node hack/critest-images/build.ts                      build (cached) and print the layout dir
//   node hack/critest-images/build.ts --push 127.0.0.1:5000 build and push to that registry
//   node hack/critest-images/build.ts --serve               start a loopback registry, push, wait for Ctrl-C
//   node hack/critest-images/build.ts --list               print the images and what each holds
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, renameSync, statSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { candidateVersions, unpackDeb } from "./debian.ts";
import { IMAGES, SKIPPED, buildLayers, type StandInImage } from "./images.ts";
import { OciLayoutWriter, type LayerBlob } from "./oci-layout.ts";
import { writeTar } from "./layer-builder.ts";
import { startRegistry } from "../registry/registry.ts";

const execFileP = promisify(execFile);

export const DEFAULT_CACHE_DIR = "/var/tmp/berth-critest-images";

export interface BuiltImage {
  /** Repository path with tag inside the registry. */
  ref: string;
  /** Name of the image in the OCI layout's index.json. */
  layoutRef: string;
  about: string;
}

export interface BuiltImages {
  layoutDir: string;
  images: BuiltImage[];
  /** Upstream references no stand-in exists for. */
  skipped: string[];
  /** True when the layout from an earlier build was reused unchanged. */
  cached: boolean;
}

/** Layout names may not contain "/" or ":" in every tool; make them flat. */
export const layoutRefName = (ref: string) => ref.replace(/[/:]/g, "_");

function fingerprint(layers: Map<string, Buffer>, images: readonly StandInImage[]): string {
  const h = createHash("sha256");
  for (const [name, tar] of [...layers].sort(([a], [b]) => (a < b ? -1 : 1))) h.update(name).update(createHash("sha256").update(tar).digest());
  h.update(JSON.stringify(images));
  h.update(readFileSync(new URL("./oci-layout.ts", import.meta.url)));
  return h.digest("hex");
}

/** Builds every stand-in image; reuses the previous layout when nothing changed. */
export async function buildStandInImages(opts: { cacheDir?: string; log?: (msg: string) => void } = {}): Promise<BuiltImages> {
  const cacheDir = opts.cacheDir ?? DEFAULT_CACHE_DIR;
  const log = opts.log ?? (() => undefined);
  mkdirSync(cacheDir, { recursive: true });
  const versions = candidateVersions(["busybox", "nginx", "nginx-common"], cacheDir);
  const deb = (pkg: string) => unpackDeb(pkg, versions.get(pkg)!, cacheDir).dir;
  const inputs = { busybox: deb("busybox"), nginx: deb("nginx"), nginxCommon: deb("nginx-common") };
  const tars = new Map<string, Buffer>();
  for (const [name, layer] of buildLayers(inputs)) tars.set(name, writeTar(layer.entries()));
  const fp = fingerprint(tars, IMAGES);
  // One layout directory per fingerprint: a rebuild never changes a layout another run may be pushing from.
  const layoutDir = join(cacheDir, `oci-${fp.slice(0, 16)}`);
  const images = IMAGES.flatMap((img) => img.refs.map((ref) => ({ ref, layoutRef: layoutRefName(ref), about: img.about })));
  const result = { layoutDir, images, skipped: [...SKIPPED] };
  if (existsSync(join(layoutDir, "index.json"))) {
    log(`critest images: layout ${layoutDir} is current`);
    return { ...result, cached: true };
  }
  log(`critest images: building ${images.length} references into ${layoutDir}`);
  const tmp = `${layoutDir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  const w = await OciLayoutWriter.create(tmp, join(cacheDir, "gz"));
  const blobs = new Map<string, LayerBlob>();
  for (const [name, tar] of tars) blobs.set(name, await w.addLayer(tar));
  for (const img of IMAGES) {
    const desc = await w.addImage(img.layers.map((l) => blobs.get(l)!), img.config, img.layers.map((l) => `berth hack/critest-images: layer ${l}`));
    for (const ref of img.refs) w.name(desc, layoutRefName(ref));
  }
  await w.finish();
  try {
    renameSync(tmp, layoutDir);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    if (!existsSync(join(layoutDir, "index.json"))) throw err; // else a concurrent build made the same layout
  }
  removeStaleLayouts(cacheDir, layoutDir);
  return { ...result, cached: false };
}

/** Deletes layouts of earlier inputs that were last touched over a day ago. */
function removeStaleLayouts(cacheDir: string, keep: string): void {
  const dayAgo = Date.now() - 24 * 3600 * 1000;
  for (const name of readdirSync(cacheDir)) {
    const p = join(cacheDir, name);
    if (p === keep || !/^oci(-[0-9a-f]{16})?$/.test(name)) continue;
    if (statSync(p).mtimeMs < dayAgo) rmSync(p, { recursive: true, force: true });
  }
}

/** skopeo copies run this many at a time (one repository per worker). */
const PUSH_CONCURRENCY = 4;

/**
 * Pushes every built image to `registry` ("127.0.0.1:PORT") under its critest
 * repository path, keeping the single-platform index (like the upstream lists).
 * Tags of one repository are pushed one after another: docker-registry can
 * refuse an index whose children another push is still writing.
 */
export async function pushStandInImages(built: BuiltImages, registry: string, opts: { skopeo?: string } = {}): Promise<void> {
  const byRepo = new Map<string, BuiltImage[]>();
  for (const img of built.images) {
    const repo = img.ref.slice(0, img.ref.lastIndexOf(":"));
    byRepo.set(repo, [...(byRepo.get(repo) ?? []), img]);
  }
  const queue = [...byRepo.values()];
  const push = async (img: BuiltImage) => {
    const args = ["copy", "--quiet", "--all", "--preserve-digests", "--dest-tls-verify=false",
      `oci:${built.layoutDir}:${img.layoutRef}`, `docker://${registry}/${img.ref}`];
    try {
      await execFileP(opts.skopeo ?? "skopeo", args, { maxBuffer: 16 << 20 });
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`skopeo ${args.join(" ")} failed: ${(e.stderr || e.message).trim()}`);
    }
  };
  const worker = async () => {
    for (let repo = queue.shift(); repo; repo = queue.shift()) for (const img of repo) await push(img);
  };
  await Promise.all(Array.from({ length: PUSH_CONCURRENCY }, worker));
}

async function main(argv: string[]): Promise<void> {
  const flag = (name: string) => argv.includes(name);
  const value = (name: string) => { const i = argv.indexOf(name); return i >= 0 ? argv[i + 1] : undefined; };
  if (flag("--help") || flag("-h")) {
    process.stdout.write("usage: build.ts [--cache-dir DIR] [--list] [--push HOST:PORT | --serve]\n");
    return;
  }
  if (flag("--list")) {
    for (const img of IMAGES) process.stdout.write(`${img.refs.join(", ")}\n    ${img.about}\n`);
    for (const s of SKIPPED) process.stdout.write(`${s}\n    skipped: pinned to upstream bytes, cannot be reproduced\n`);
    return;
  }
  const log = (m: string) => process.stderr.write(`${m}\n`);
  const started = Date.now();
  const built = await buildStandInImages({ cacheDir: value("--cache-dir") ?? DEFAULT_CACHE_DIR, log });
  log(`critest images: ${built.images.length} references ready in ${Date.now() - started} ms (${built.cached ? "cached" : "built"})`);
  const push = value("--push");
  if (push) {
    await pushStandInImages(built, push);
    log(`critest images: pushed to ${push}`);
  } else if (flag("--serve")) {
    const reg = await startRegistry();
    const stop = () => { void reg.stop().then(() => process.exit(0)); };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
    try {
      await pushStandInImages(built, reg.address);
    } catch (err) {
      await reg.stop();
      throw err;
    }
    log(`critest images: serving at http://${reg.address} (Ctrl-C stops and deletes it)`);
  }
  process.stdout.write(`${built.layoutDir}\n`);
}

if (import.meta.main) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`build.ts: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
