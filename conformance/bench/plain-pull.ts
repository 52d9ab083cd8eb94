// The reference for pull throughput: the same layers through a plain pipeline in this harness,
// all layers at once, each fetch -> sha256 -> gunzip -> `tar -x` into a fresh directory. No
// fsync, no overlay snapshots, no metadata: what a runtime's pull is measured against.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";

export interface PlainPullInput {
  registry: string;
  repo: string;
  layers: { digest: string; size: number }[];
  workDir: string;
  /** Ends a layer that takes longer (default 300 s). */
  timeoutMs?: number;
}

/** A pass-through that hashes what flows through it. */
function hashing(hash: ReturnType<typeof createHash>): Transform {
  return new Transform({ transform(chunk: Buffer, _enc, cb) { hash.update(chunk); cb(null, chunk); } });
}

/** `tar -x` of stdin into `dir`, as a writable end of a pipeline; resolves when tar exits 0. */
function untar(dir: string, signal: AbortSignal): { stdin: NodeJS.WritableStream; done: Promise<void> } {
  // --ignore-zeros: tar reads to the end of its input instead of stopping at the end-of-archive
  // blocks, so the padding after them never meets a closed pipe (premature close).
  const tar = spawn("tar", ["-x", "--ignore-zeros", "--no-same-owner", "-C", dir], { stdio: ["pipe", "ignore", "pipe"], signal });
  let err = "";
  tar.stderr!.setEncoding("utf8").on("data", (d: string) => { if (err.length < 2000) err += d; });
  const done = new Promise<void>((resolve, reject) => {
    tar.on("error", reject);
    tar.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`tar -x exited ${code}: ${err.trim()}`))));
  });
  return { stdin: tar.stdin!, done };
}

/** One layer: fetch, hash (checked against its digest), gunzip, untar. */
async function layer(input: PlainPullInput, l: { digest: string; size: number }, dir: string, signal: AbortSignal): Promise<void> {
  const res = await fetch(`http://${input.registry}/v2/${input.repo}/blobs/${l.digest}`, { signal });
  if (!res.ok || !res.body) throw new Error(`GET blob ${l.digest}: HTTP ${res.status}`);
  const hash = createHash("sha256");
  const tar = untar(dir, signal);
  await Promise.all([pipeline(Readable.fromWeb(res.body as import("node:stream/web").ReadableStream), hashing(hash), createGunzip(), tar.stdin), tar.done]);
  const got = `sha256:${hash.digest("hex")}`;
  if (got !== l.digest) throw new Error(`blob ${l.digest}: content hashes to ${got}`);
}

/** Pulls every layer at once into a fresh directory under workDir; returns the seconds taken. */
export async function plainPull(input: PlainPullInput): Promise<number> {
  const dir = await mkdtemp(join(input.workDir, "plain-"));
  const signal = AbortSignal.timeout(input.timeoutMs ?? 300_000);
  try {
    const t = performance.now();
    await Promise.all(input.layers.map(async (l, i) => {
      const to = join(dir, String(i));
      await mkdir(to);
      await layer(input, l, to, signal);
    }));
    return (performance.now() - t) / 1000;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
