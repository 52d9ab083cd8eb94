// Cold image pull of the ~100 MB, 4-layer image: each repetition on a fresh instance (new
// root: no content, no snapshots), timed from PullImage call to answer. Repetitions alternate
// between the runtimes so a change in the machine's load hits both alike.
import { cellOf } from "../context.ts";
import type { Cell, Results } from "../report.ts";
import type { Target } from "../target.ts";
import type { BenchImages } from "../images.ts";
import { summarize } from "../stats.ts";
import { interrupt, InterruptedError } from "../interrupt.ts";

export const PULL_METRICS = [["cold pull median", "s"], ["cold pull best", "s"], ["throughput (median)", "MB/s"]] as const;
const PULL_TIMEOUT_MS = 300_000;

async function coldPull(target: Target, image: string): Promise<number> {
  const inst = await target.start();
  try {
    const t = performance.now();
    await inst.client.image.pullImage({ image: { image } }, { timeoutMs: PULL_TIMEOUT_MS });
    return (performance.now() - t) / 1000;
  } finally {
    await inst.stop();
  }
}

export async function pull(targets: Target[], images: BenchImages, reps: number, results: Results, log: (m: string) => void, budgetMs = 600_000): Promise<void> {
  const deadline = Date.now() + budgetMs;
  const seconds = new Map<Target, number[]>(targets.map((t) => [t, []]));
  const failed = new Map<Target, Cell>();
  for (let i = 0; i < reps; i++) {
    for (const target of targets) {
      if (failed.has(target)) continue;
      try {
        if (interrupt.requested) throw new InterruptedError();
        if (Date.now() > deadline) throw new Error(`pull: gave up after ${budgetMs / 1000} s`);
        const s = await coldPull(target, images.big);
        seconds.get(target)!.push(s);
        log(`${target.name}: cold pull ${i + 1}/${reps}: ${s.toFixed(2)} s`);
      } catch (err) {
        const cell = cellOf(err);
        log(`${target.name}: pull: ${"na" in cell ? `n/a (${cell.na})` : "error" in cell ? `error: ${cell.error}` : ""}`);
        failed.set(target, cell);
      }
    }
  }
  for (const target of targets) {
    const problem = failed.get(target);
    if (problem) {
      results.fill("pull", PULL_METRICS, target.name, problem);
      continue;
    }
    const samples = seconds.get(target)!;
    const s = summarize(samples);
    results.set("pull", "cold pull median", "s", target.name, { value: s.p50, samples });
    results.set("pull", "cold pull best", "s", target.name, { value: s.min });
    results.set("pull", "throughput (median)", "MB/s", target.name, { value: images.bigBytes / 1e6 / s.p50 });
  }
}
