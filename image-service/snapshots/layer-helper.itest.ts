// FsSyncer against the real berth-layer helper (hack/build-helpers.sh): one process shared by
// concurrent syncfs requests, gone after the last release, and a failing helper never hangs.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { childProcesses } from "../../conformance/lib/procs.ts";
import { DEFAULT_LAYER_HELPER, FsSyncer, LayerHelperError } from "./layer-helper.ts";

/** berth-layer processes whose parent is this process. */
const helperChildren = (): number[] => childProcesses([process.pid], "berth-layer").map((c) => c.pid);

describe("FsSyncer", () => {
  it("serves concurrent syncfs requests from one berth-layer and ends it on the last release", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "berth-syncer-"));
    try {
      const s = new FsSyncer(DEFAULT_LAYER_HELPER, dir);
      s.acquire();
      s.acquire();
      await writeFile(path.join(dir, "f"), "data");
      const seen = new Set<number>();
      const all = Promise.all(Array.from({ length: 6 }, () => s.sync()));
      for (let i = 0; i < 3; i++) { for (const p of helperChildren()) seen.add(p); await new Promise((r) => setImmediate(r)); }
      await all;
      for (const p of helperChildren()) seen.add(p);
      assert.equal(seen.size, 1, `one helper process for all requests, saw ${[...seen].join(", ")}`);
      await s.sync(); // later requests reuse it
      assert.deepEqual(helperChildren(), [...seen]);
      await s.release();
      assert.equal(helperChildren().length, 1, "still in use by the second user");
      await s.release();
      assert.deepEqual(helperChildren(), [], "the last release ends the helper");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("a helper that cannot start fails every request with its reason, without hanging or leaving a process", async () => {
    const s = new FsSyncer(DEFAULT_LAYER_HELPER, "/nonexistent/berth-syncer-root");
    s.acquire();
    const results = await Promise.allSettled([s.sync(), s.sync(), s.sync()]);
    for (const r of results) {
      assert.equal(r.status, "rejected");
      assert.ok((r as PromiseRejectedResult).reason instanceof LayerHelperError, String((r as PromiseRejectedResult).reason));
      assert.match(((r as PromiseRejectedResult).reason as Error).message, /nonexistent/);
    }
    await s.release();
    assert.deepEqual(helperChildren(), []);
  });
});
