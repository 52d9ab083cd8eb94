// Pull benchmark for the image service alone (no daemon, no gRPC): the bench's ~100 MB,
// 4-layer image (conformance/bench/images.ts) from a loopback docker-registry, pulled cold by
// berth's ImageService in this process, alternating with the plain reference (fetch + sha256 +
// gunzip + tar -x of the same layers, conformance/bench/plain-pull.ts). Before every pull dirty
// pages are written back and the page cache dropped. Prints each run, then median [min..max].
//   node conformance/bench/pull-bench.ts [runs=5] [--berth-only] [--downloads N] [--verbose]
// With `node --cpu-prof --cpu-prof-dir DIR conformance/bench/pull-bench.ts 1 --berth-only` the
// profile covers one cold pull. Each run also prints the CPU of the event loop (the main thread:
// hashing, tar, file creation) apart, which bounds a pull when the other core is busy. Needs root (drop_caches).
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { PerformanceObserver } from "node:perf_hooks";
import path from "node:path";
import { createLogger, setLogLevel } from "../../oci-runtime/foundation/log.ts";
import { ImageService } from "../../image-service/image-service.ts";
import { bigImage } from "./images.ts";
import { dropCaches } from "./host.ts";
import { plainPull } from "./plain-pull.ts";
import { pushImage } from "../../hack/registry/push.ts";
import { startRegistry } from "../../hack/registry/registry.ts";

/** CPU seconds of this process's main thread (the event loop) and of its reaped children (berth-layer), from /proc. */
function threadCpu(): { main: number; children: number } {
  const fields = (file: string) => { const st = readFileSync(file, "utf8"); return st.slice(st.lastIndexOf(")") + 2).split(" ").map(Number); };
  const t = fields(`/proc/self/task/${process.pid}/stat`);
  const p = fields("/proc/self/stat");
  return { main: (t[11]! + t[12]!) / 100, children: (p[13]! + p[14]!) / 100 };
}

const median = (v: number[]) => { const s = [...v].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2; };

export async function runPullBench(runs: number, opts: { berthOnly?: boolean; downloads?: number; verbose?: boolean } = {}, log = (s: string) => process.stdout.write(s + "\n")) {
  const work = await mkdtemp(path.join("/var/tmp", "berth-pull-bench-"));
  const reg = await startRegistry({ dir: path.join(work, "registry") });
  try {
    const img = await bigImage();
    await pushImage({ address: reg.address }, "bench/big", "latest", img);
    const layers = img.blobs.filter((b) => b.digest !== img.config.digest);
    const bytes = img.manifest.size + img.blobs.reduce((a, b) => a + b.size, 0);
    const ref = `${reg.address}/bench/big:latest`;
    log(`image ${ref}: ${layers.length} layers, ${(bytes / 1e6).toFixed(1)} MB compressed`);
    const results: Record<string, number[]> = { berth: [], ...(opts.berthOnly ? {} : { reference: [] }) };
    const cpus: number[] = [];
    const mains: number[] = [];
    if (opts.verbose) setLogLevel("debug");
    for (let i = 0; i < runs; i++) {
      const root = path.join(work, `berth-${i}`);
      // --verbose prints each layer's time, entries and syncfs time (the "layer unpacked" debug line).
      const write = opts.verbose ? (l: string) => { const j = JSON.parse(l) as Record<string, unknown>; if (j.msg === "layer unpacked") log(`  layer ${String(j.digest).slice(7, 19)}: ${j.ms} ms, sync ${j.syncMs} ms, ${j.entries} entries`); } : () => {};
      const svc = new ImageService({ root, hostsDir: "", maxConcurrentDownloads: opts.downloads ?? 3, stallTimeoutMs: 60_000, log: createLogger({}, write) });
      await svc.init();
      await dropCaches();
      const t0 = performance.now();
      const h0 = process.hrtime.bigint();
      const c0 = process.cpuUsage();
      const m0 = threadCpu();
      const gc = { n: 0, ms: 0 };
      const obs = new PerformanceObserver((l) => { for (const e of l.getEntries()) { gc.n++; gc.ms += e.duration; } });
      if (opts.verbose) obs.observe({ entryTypes: ["gc"] });
      await svc.pull(ref);
      obs.disconnect();
      if (opts.verbose) log(`  gc: ${gc.n} collections, ${gc.ms.toFixed(0)} ms`);
      const s = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(c0);
      const m1 = threadCpu();
      cpus.push((cpu.user + cpu.system) / 1e6);
      mains.push(m1.main - m0.main);
      if (process.env.PULL_BENCH_WINDOWS) log(`window ${h0 / 1000n} ${process.hrtime.bigint() / 1000n}`);
      results.berth!.push(s);
      log(`berth      run ${i + 1}: ${s.toFixed(2)} s, ${(bytes / 1e6 / s).toFixed(1)} MB/s, cpu ${(cpu.user / 1e3).toFixed(0)} ms user + ${(cpu.system / 1e3).toFixed(0)} ms sys (all threads), event loop ${((m1.main - m0.main) * 1e3).toFixed(0)} ms, helpers ${((m1.children - m0.children) * 1e3).toFixed(0)} ms`);
      await rm(root, { recursive: true, force: true });
      if (opts.berthOnly) continue;
      await dropCaches();
      const r = await plainPull({ registry: reg.address, repo: "bench/big", layers: layers.map((l) => ({ digest: l.digest, size: l.size })), workDir: work });
      results.reference!.push(r);
      log(`reference  run ${i + 1}: ${r.toFixed(2)} s, ${(bytes / 1e6 / r).toFixed(1)} MB/s`);
    }
    for (const [k, v] of Object.entries(results)) {
      const m = median(v);
      log(`${k.padEnd(10)} median ${m.toFixed(2)} s [${Math.min(...v).toFixed(2)}..${Math.max(...v).toFixed(2)}] (${(bytes / 1e6 / m).toFixed(1)} MB/s)`);
    }
    log(`berth cpu  median ${median(cpus).toFixed(2)} s [${Math.min(...cpus).toFixed(2)}..${Math.max(...cpus).toFixed(2)}]`);
    log(`berth event-loop cpu median ${median(mains).toFixed(2)} s [${Math.min(...mains).toFixed(2)}..${Math.max(...mains).toFixed(2)}]`);
    return results;
  } finally {
    await reg.stop();
    await rm(work, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const d = args.indexOf("--downloads");
  await runPullBench(Number(args.find((a) => /^\d+$/.test(a) && args[args.indexOf(a) - 1] !== "--downloads") ?? 5), {
    berthOnly: args.includes("--berth-only"),
    verbose: args.includes("--verbose"),
    ...(d >= 0 ? { downloads: Number(args[d + 1]) } : {}),
  });
}
