// Pull benchmark: a ~100 MB image of 4 layers (large files and thousands of small ones) from a
// loopback docker-registry, pulled cold several times by berth's ImageService, and by
// containerd (its own temporary instance, `ctr images pull`, which also unpacks) when installed.
//   node hack/registry/pull-bench.ts [runs=3]
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { createLogger } from "../../oci-runtime/foundation/log.ts";
import { ImageService } from "../../image-service/image-service.ts";
import { buildTar, type TarFixtureEntry } from "./tar-writer.ts";
import { buildImage, layerBlob } from "./oci-image.ts";
import { pushImage } from "./push.ts";
import { startRegistry } from "./registry.ts";

function bigFiles(prefix: string, count: number, size: number): TarFixtureEntry[] {
  // Half random (incompressible), half text, like real binaries and assets.
  return Array.from({ length: count }, (_, i) => ({
    name: `${prefix}/big-${i}`,
    data: i % 2 ? randomBytes(size) : Buffer.from("berth pull benchmark ".repeat(size / 21 + 1)).subarray(0, size),
  }));
}
function smallFiles(prefix: string, count: number): TarFixtureEntry[] {
  const out: TarFixtureEntry[] = [];
  for (let d = 0; d < count / 100; d++) {
    out.push({ name: `${prefix}/d${d}/`, type: "dir" });
    for (let f = 0; f < 100; f++) out.push({ name: `${prefix}/d${d}/f${f}.txt`, data: randomBytes(600).toString("base64") });
  }
  return out;
}

export async function runPullBench(runs: number, log = (s: string) => process.stdout.write(s + "\n")) {
  const work = await mkdtemp(path.join(tmpdir(), "berth-bench-"));
  const reg = await startRegistry({ dir: path.join(work, "registry") });
  try {
    const layers = [
      layerBlob(buildTar(bigFiles("opt/a", 4, 12 << 20)), "gzip"),
      layerBlob(buildTar(bigFiles("opt/b", 6, 6 << 20)), "gzip"),
      layerBlob(buildTar(smallFiles("usr/share/small", 5000)), "gzip"),
      layerBlob(buildTar([...bigFiles("srv/c", 2, 5 << 20), ...smallFiles("srv/c/small", 2000)]), "gzip"),
    ];
    const img = buildImage(layers);
    await pushImage({ address: reg.address }, "bench/big", "latest", img);
    const bytes = layers.reduce((a, l) => a + l.size, 0);
    const ref = `${reg.address}/bench/big:latest`;
    log(`image ${ref}: ${layers.length} layers, ${(bytes / 1e6).toFixed(1)} MB compressed`);
    const results: Record<string, number[]> = { berth: [] };
    for (let i = 0; i < runs; i++) {
      const root = path.join(work, `berth-${i}`);
      const svc = new ImageService({ root, hostsDir: "", maxConcurrentDownloads: 3, stallTimeoutMs: 60_000, log: createLogger({}, () => {}) });
      await svc.init();
      const t0 = performance.now();
      await svc.pull(ref);
      const s = (performance.now() - t0) / 1000;
      results.berth!.push(s);
      log(`berth      run ${i + 1}: ${s.toFixed(2)} s, ${(bytes / 1e6 / s).toFixed(1)} MB/s`);
      await rm(root, { recursive: true, force: true });
    }
    if (existsSync("/usr/bin/containerd") && existsSync("/usr/bin/ctr")) {
      results.containerd = [];
      for (let i = 0; i < runs; i++) {
        const s = await containerdPull(path.join(work, `ctrd-${i}`), ref, reg.address);
        results.containerd.push(s);
        log(`containerd run ${i + 1}: ${s.toFixed(2)} s, ${(bytes / 1e6 / s).toFixed(1)} MB/s`);
      }
    }
    for (const [k, v] of Object.entries(results)) {
      const best = Math.min(...v);
      log(`${k.padEnd(10)} best ${best.toFixed(2)} s (${(bytes / 1e6 / best).toFixed(1)} MB/s)`);
    }
    return results;
  } finally {
    await reg.stop();
    await rm(work, { recursive: true, force: true });
  }
}

async function containerdPull(dir: string, ref: string, registry: string): Promise<number> {
  const sock = path.join(dir, "c.sock");
  const certs = path.join(dir, "certs.d", registry);
  execFileSync("mkdir", ["-p", certs]);
  await writeFile(path.join(certs, "hosts.toml"), `server = "http://${registry}"\n`);
  await writeFile(path.join(dir, "config.toml"), [
    "version = 2", `root = "${dir}/root"`, `state = "${dir}/state"`,
    `[grpc]\n  address = "${sock}"`, `[ttrpc]\n  address = "${sock}.ttrpc"`,
    `disabled_plugins = ["io.containerd.grpc.v1.cri"]`,
  ].join("\n"));
  const child = spawn("containerd", ["--config", path.join(dir, "config.toml")], { stdio: "ignore" });
  try {
    for (let i = 0; i < 100 && !existsSync(sock); i++) await sleep(50);
    const t0 = performance.now();
    execFileSync("ctr", ["--address", sock, "-n", "bench", "images", "pull", "--hosts-dir", path.join(dir, "certs.d"), ref], { stdio: "ignore" });
    return (performance.now() - t0) / 1000;
  } finally {
    child.kill("SIGTERM");
    await new Promise((r) => child.once("exit", r));
    execFileSync("sh", ["-c", `grep -o ' ${dir}[^ ]*' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true`]);
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) await runPullBench(Number(process.argv[2] ?? 3));
