// Cold image pull of the ~100 MB, 4-layer image: each repetition on a fresh instance (new
// root: no content, no snapshots), timed from PullImage call to answer.
import { cellOf } from "../context.ts";
import type { Results } from "../report.ts";
import type { Target } from "../target.ts";
import type { BenchImages } from "../images.ts";
import { summarize } from "../stats.ts";
import { interrupt, InterruptedError } from "../interrupt.ts";

export const PULL_METRICS = [["cold pull median", "s"], ["cold pull best", "s"], ["throughput (median)", "MB/s"]] as const;
const PULL_TIMEOUT_MS = 300_000;

export async function pull(target: Target, images: BenchImages, reps: number, results: Results, log: (m: string) => void, budgetMs = 600_000): Promise<void> {
  const deadline = Date.now() + budgetMs;
  const seconds: number[] = [];
  try {
    for (let i = 0; i < reps && Date.now() < deadline; i++) {
      if (interrupt.requested) throw new InterruptedError();
      const inst = await target.start();
      try {
        const t = performance.now();
        await inst.client.image.pullImage({ image: { image: images.big } }, { timeoutMs: PULL_TIMEOUT_MS });
        seconds.push((performance.now() - t) / 1000);
        log(`${target.name}: cold pull ${i + 1}/${reps}: ${seconds.at(-1)!.toFixed(2)} s`);
      } finally {
        await inst.stop();
      }
    }
    if (!seconds.length) throw new Error(`pull: no repetition finished within ${budgetMs / 1000} s`);
  } catch (err) {
    results.fill("pull", PULL_METRICS, target.name, cellOf(err));
    log(`${target.name}: pull: ${JSON.stringify(cellOf(err))}`);
    return;
  }
  const s = summarize(seconds);
  const mb = images.bigBytes / 1e6;
  results.set("pull", "cold pull median", "s", target.name, { value: s.p50, samples: seconds });
  results.set("pull", "cold pull best", "s", target.name, { value: s.min });
  results.set("pull", "throughput (median)", "MB/s", target.name, { value: mb / s.p50 });
}
