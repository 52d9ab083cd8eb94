// Cold image pull of the ~100 MB, 4-layer image: each repetition on a fresh instance (new
// root: no content, no snapshots), timed from PullImage call to answer. Before every timed pull
// dirty pages are written back and the page cache dropped (`sync`, drop_caches = 3), so one
// runtime's writeback does not slow the next. Repetitions alternate between the runtimes and
// the reference (the same layers through fetch + sha256 + gunzip + tar -x, plain-pull.ts).
import { cellOf } from "../context.ts";
import { dropCaches, MB, memUseOf, withDescendants } from "../host.ts";
import { plainPull } from "../plain-pull.ts";
import type { Cell, Column, Results } from "../report.ts";
import type { BenchEnv, Target } from "../target.ts";
import { summarize } from "../stats.ts";
import { interrupt, InterruptedError } from "../interrupt.ts";
import { cpuMsWithChildren } from "../cpu.ts";

export const PULL_METRICS = [
  ["cold pull median", "s"], ["cold pull min", "s"], ["cold pull max", "s"], ["throughput (median)", "MB/s"], ["daemon CPU per pull (median)", "s"],
  ["peak RSS during a pull, daemon with its children (median)", "MB"], ["peak PSS during a pull, daemon with its children (median)", "MB"],
] as const;
const PULL_TIMEOUT_MS = 300_000;
/** How often the memory of the daemon and its children is read during a pull, for its peak. */
const RSS_SAMPLE_MS = 100;

/**
 * Wall seconds of one cold pull, the CPU seconds the daemon and everything it started used during
 * it (berth's pull process and its unpack processes, containerd's children if any), and the peaks
 * of their RSS and PSS together (smaps_rollup), read every RSS_SAMPLE_MS. PSS counts the pages
 * the processes share (the node binary of berth's three) once between them; RSS once in each.
 */
async function coldPull(target: Target, image: string): Promise<{ s: number; cpu: number; peakRss: number; peakPss: number }> {
  const inst = await target.start();
  let peakRss = 0;
  let peakPss = 0;
  const sample = () => {
    const m = memUseOf(withDescendants(inst.daemonPids()));
    peakRss = Math.max(peakRss, m.rss);
    peakPss = Math.max(peakPss, m.pss);
  };
  let timer: NodeJS.Timeout | undefined;
  try {
    await dropCaches();
    const cpu0 = cpuMsWithChildren(inst.daemonPids());
    sample();
    timer = setInterval(sample, RSS_SAMPLE_MS);
    const t = performance.now();
    await inst.client.image.pullImage({ image: { image } }, { timeoutMs: PULL_TIMEOUT_MS });
    const s = (performance.now() - t) / 1000;
    sample();
    return { s, cpu: (cpuMsWithChildren(inst.daemonPids()) - cpu0) / 1000, peakRss, peakPss };
  } finally {
    clearInterval(timer);
    await inst.stop();
  }
}

interface Puller { name: Column; pull(): Promise<{ s: number; cpu?: number; peakRss?: number; peakPss?: number }> }

export async function pull(targets: Target[], env: BenchEnv, reps: number, results: Results, log: (m: string) => void, budgetMs = 600_000): Promise<void> {
  const images = env.images;
  const pullers: Puller[] = [
    ...targets.map((t): Puller => ({ name: t.name, pull: () => coldPull(t, images.big) })),
    {
      name: "reference",
      async pull() {
        await dropCaches();
        return { s: await plainPull({ registry: env.registry, repo: images.bigRepo, layers: images.bigLayerBlobs, workDir: env.workDir, timeoutMs: PULL_TIMEOUT_MS }) };
      },
    },
  ];
  const deadline = Date.now() + budgetMs;
  const seconds = new Map<Puller, number[]>(pullers.map((p) => [p, []]));
  const cpuSeconds = new Map<Puller, number[]>(pullers.map((p) => [p, []]));
  const peaks = new Map<Puller, number[]>(pullers.map((p) => [p, []]));
  const pssPeaks = new Map<Puller, number[]>(pullers.map((p) => [p, []]));
  const failed = new Map<Puller, Cell>();
  for (let i = 0; i < reps; i++) {
    for (const p of pullers) {
      if (failed.has(p)) continue;
      try {
        if (interrupt.requested) throw new InterruptedError();
        if (Date.now() > deadline) throw new Error(`pull: gave up after ${budgetMs / 1000} s`);
        const { s, cpu, peakRss, peakPss } = await p.pull();
        seconds.get(p)!.push(s);
        if (cpu !== undefined) cpuSeconds.get(p)!.push(cpu);
        if (peakRss !== undefined) peaks.get(p)!.push(peakRss / MB);
        if (peakPss !== undefined) pssPeaks.get(p)!.push(peakPss / MB);
        log(`${p.name}: cold pull ${i + 1}/${reps}: ${s.toFixed(2)} s`);
      } catch (err) {
        const cell = cellOf(err);
        log(`${p.name}: pull: ${"na" in cell ? `n/a (${cell.na})` : "error" in cell ? `error: ${cell.error}` : ""}`);
        failed.set(p, cell);
      }
    }
  }
  for (const p of pullers) {
    const problem = failed.get(p);
    const samples = seconds.get(p)!;
    if (problem) {
      for (const [metric, unit] of PULL_METRICS) results.set("pull", metric, unit, p.name, problem);
      continue;
    }
    const s = summarize(samples);
    results.set("pull", "cold pull median", "s", p.name, { value: s.p50, samples });
    results.set("pull", "cold pull min", "s", p.name, { value: s.min });
    results.set("pull", "cold pull max", "s", p.name, { value: s.max });
    results.set("pull", "throughput (median)", "MB/s", p.name, { value: images.bigBytes / 1e6 / s.p50 });
    const cpu = cpuSeconds.get(p)!;
    if (cpu.length) results.set("pull", "daemon CPU per pull (median)", "s", p.name, { value: summarize(cpu).p50, samples: cpu });
    const peak = peaks.get(p)!;
    if (peak.length) results.set("pull", "peak RSS during a pull, daemon with its children (median)", "MB", p.name, { value: summarize(peak).p50, samples: peak });
    const pss = pssPeaks.get(p)!;
    if (pss.length) results.set("pull", "peak PSS during a pull, daemon with its children (median)", "MB", p.name, { value: summarize(pss).p50, samples: pss });
  }
}
