// The benchmark's images: a small busybox image for pods, a pause image from catatonit
// (containerd's sandbox_image) and a ~100 MB image of 4 layers (large incompressible files
// and thousands of small ones). The big image is generated deterministically and cached under
// /var/tmp/berth-bench-images, so repeated runs only push it.
import { createCipheriv, createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, open, readFile, rename } from "node:fs/promises";
import { join } from "node:path";
import { buildImage, layerBlob, type Blob, type BuiltImage } from "../../hack/registry/oci-image.ts";
import { pushImage, type PushTarget } from "../../hack/registry/push.ts";
import { buildTar, type TarFixtureEntry } from "../../hack/registry/tar-writer.ts";

export const CACHE_DIR = "/var/tmp/berth-bench-images";
const BIG_VERSION = "big-v1";

export interface BenchImages {
  /** busybox-static with sh, sleep, echo. */
  busybox: string;
  /** catatonit -P, for containerd's sandbox_image. */
  pause: string;
  /** The ~100 MB, 4-layer pull benchmark image. */
  big: string;
  /** Bytes a pull of `big` transfers (manifest, config and compressed layers). */
  bigBytes: number;
  bigLayers: number;
  /** The big image's repository on the registry and its gzip layers, for the plain-pipeline reference. */
  bigRepo: string;
  bigLayerBlobs: { digest: string; size: number }[];
}

const BUSYBOX_APPLETS = ["sh", "sleep", "echo", "cat", "ls", "true", "hostname", "ps"];

export function busyboxImage(): BuiltImage {
  const entries: TarFixtureEntry[] = [
    { name: "bin/", type: "dir" },
    { name: "bin/busybox", data: readFileSync("/usr/bin/busybox"), mode: 0o755 },
    ...BUSYBOX_APPLETS.map((a): TarFixtureEntry => ({ name: `bin/${a}`, type: "symlink", linkname: "busybox" })),
    { name: "etc/", type: "dir" },
    { name: "etc/passwd", data: "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n" },
    { name: "etc/group", data: "root:x:0:\nnogroup:x:65534:\n" },
    { name: "tmp/", type: "dir", mode: 0o1777 },
    { name: "root/", type: "dir", mode: 0o700 },
  ];
  return buildImage([layerBlob(buildTar(entries))], { Cmd: ["sh"] });
}

export function pauseImage(): BuiltImage {
  const entries: TarFixtureEntry[] = [{ name: "catatonit", data: readFileSync("/usr/bin/catatonit"), mode: 0o755 }];
  return buildImage([layerBlob(buildTar(entries))], { Entrypoint: ["/catatonit", "-P"], Cmd: null });
}

/** Deterministic incompressible bytes: AES-256-CTR keystream keyed by `label`. */
export function pseudoRandom(label: string, size: number): Buffer {
  const key = createHash("sha256").update("berth-bench:" + label).digest();
  const iv = createHash("md5").update(label).digest();
  return createCipheriv("aes-256-ctr", key, iv).update(Buffer.alloc(size));
}

const MiB = 1024 * 1024;

/** Entries of the four big-image layers: ~100 MB compressed, ~5000 small files. */
export function bigLayerEntries(): TarFixtureEntry[][] {
  const small = (layer: string, count: number, min: number, spread: number, textual: boolean): TarFixtureEntry[] => {
    const sizes = pseudoRandom(`${layer}-sizes`, count * 2);
    const out: TarFixtureEntry[] = [];
    for (let i = 0; i < count; i++) {
      if (i % 100 === 0) out.push({ name: `data/${layer}/d${String(i / 100).padStart(3, "0")}/`, type: "dir" });
      const size = min + (sizes.readUInt16LE(i * 2) % spread);
      const data = textual
        ? Buffer.from(`line ${i} of ${layer}: the quick brown fox jumps over the lazy dog\n`.repeat(Math.ceil(size / 60))).subarray(0, size)
        : pseudoRandom(`${layer}-${i}`, size);
      out.push({ name: `data/${layer}/d${String(Math.floor(i / 100)).padStart(3, "0")}/f${i}`, data });
    }
    return out;
  };
  return [
    [
      { name: "bin/", type: "dir" },
      { name: "bin/busybox", data: readFileSync("/usr/bin/busybox"), mode: 0o755 },
      { name: "bin/sh", type: "symlink", linkname: "busybox" },
      { name: "data/", type: "dir" },
      { name: "data/big/", type: "dir" },
      { name: "data/big/a.bin", data: pseudoRandom("a.bin", 32 * MiB) },
    ],
    [
      { name: "data/big/b.bin", data: pseudoRandom("b.bin", 24 * MiB) },
      { name: "data/big/c.bin", data: pseudoRandom("c.bin", 16 * MiB) },
    ],
    [{ name: "data/small/", type: "dir" }, ...small("small", 3000, 1024, 7 * 1024, false)],
    [
      { name: "data/text/", type: "dir" },
      ...small("text", 2000, 512, 3584, true),
      { name: "data/big/d.bin", data: pseudoRandom("d.bin", 12 * MiB) },
    ],
  ];
}

interface CachedImage { manifest: Omit<Blob, "data">; blobs: Omit<Blob, "data">[]; config: Omit<Blob, "data"> }

async function writeAtomic(path: string, data: Buffer | string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  const fh = await open(tmp, "w", 0o644);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

const strip = ({ digest, size, mediaType }: Blob) => ({ digest, size, mediaType });

/** Loads the big image from the cache, building and caching it first when absent. */
export async function bigImage(cacheDir = CACHE_DIR): Promise<BuiltImage> {
  const dir = join(cacheDir, BIG_VERSION);
  const index = join(dir, "image.json");
  const blobPath = (d: string) => join(dir, "blobs", d.replace("sha256:", ""));
  if (!existsSync(index)) {
    await mkdir(join(dir, "blobs"), { recursive: true });
    const img = buildImage(bigLayerEntries().map((e) => layerBlob(buildTar(e), "gzip")), { Cmd: ["sh"] });
    for (const b of [...img.blobs, img.manifest]) await writeAtomic(blobPath(b.digest), b.data);
    const cached: CachedImage = { manifest: strip(img.manifest), blobs: img.blobs.map(strip), config: strip(img.config) };
    await writeAtomic(index, JSON.stringify(cached));
    return img;
  }
  const cached = JSON.parse(await readFile(index, "utf8")) as CachedImage;
  const load = async (b: Omit<Blob, "data">): Promise<Blob> => {
    const data = await readFile(blobPath(b.digest));
    if (data.length !== b.size) throw new Error(`bench image cache: ${blobPath(b.digest)} has ${data.length} bytes, want ${b.size}; delete ${dir}`);
    return { ...b, data };
  };
  const blobs = await Promise.all(cached.blobs.map(load));
  return { blobs, manifest: await load(cached.manifest), config: blobs.find((b) => b.digest === cached.config.digest)! };
}

/** Builds (or loads) and pushes the images (the big one only when asked); returns their references. */
export async function pushBenchImages(t: PushTarget, withBig = true): Promise<BenchImages> {
  await pushImage(t, "bench/busybox", "bench", busyboxImage());
  await pushImage(t, "bench/pause", "bench", pauseImage());
  const big = withBig ? await bigImage() : buildImage([]);
  if (withBig) await pushImage(t, "bench/big", "bench", big);
  return {
    busybox: `${t.address}/bench/busybox:bench`,
    pause: `${t.address}/bench/pause:bench`,
    big: `${t.address}/bench/big:bench`,
    bigBytes: big.manifest.size + big.blobs.reduce((a, b) => a + b.size, 0),
    bigLayers: big.blobs.length - 1,
    bigRepo: "bench/big",
    bigLayerBlobs: big.blobs.filter((b) => b.digest !== big.config.digest).map((b) => ({ digest: b.digest, size: b.size })),
  };
}
