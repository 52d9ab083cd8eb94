// Memory back after removals, over the real socket: bin/berthd starts node with --expose-gc, and
// once it serves and once pods stop being removed berthd runs one memory-reducing collection
// (cri-server/idle-gc.ts), then glibc's malloc_trim through the berth-trim.node addon, logged at
// debug level. The memory it gives back is the bench's to show, not asserted here.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { runSleepingPod, startPodEnv, type PodEnv } from "../lib/pod.ts";
import { IDLE_MS, MIN_INTERVAL_MS } from "../../cri-server/idle-gc.ts";

const LINE = /"msg":"memory-reducing gc".*"after":"removals"/g;
const STARTUP = /"msg":"memory-reducing gc".*"after":"start-up"/g;

describe("memory-reducing collection after removals", () => {
  let env: PodEnv;
  before(async () => { env = await startPodEnv({ images: true, toml: '[log]\nlevel = "debug"\n' }); });
  after(async () => { await env?.cleanup(); });

  test("berthd's node exposes gc", () => {
    const argv = readFileSync(`/proc/${env.b.proc.pid}/cmdline`, "utf8").split("\0");
    assert.ok(argv.includes("--expose-gc"), argv.join(" "));
  });

  test("one collection after start-up, followed by malloc_trim through the installed berth-trim.node", async () => {
    const count = () => env.b.stderr.join("").match(STARTUP)?.length ?? 0;
    for (let i = 0; i < 100 && count() === 0; i++) await sleep(50);
    assert.equal(count(), 1);
    const line = env.b.stderr.join("").split("\n").find((l) => new RegExp(STARTUP.source).test(l));
    const said = JSON.parse(line ?? "{}") as { trimmed?: unknown };
    assert.equal(typeof said.trimmed, "boolean", `the line says whether the trim gave memory back: ${line}`);
    assert.doesNotMatch(env.b.stderr.join(""), /no malloc_trim after the memory-reducing gc/);
  });

  test("a burst of removals is followed by one collection, once they stop; creating pods runs none", async () => {
    const c = env.b.client;
    await c.image.pullImage({ image: { image: env.images!.busybox } });
    const pods = [];
    for (let i = 0; i < 3; i++) pods.push(await runSleepingPod(c, env.images!.busybox));
    await sleep(1500);
    const count = () => env.b.stderr.join("").match(LINE)?.length ?? 0;
    assert.equal(count(), 0, "no collection after creating pods");
    for (const p of pods) {
      await c.runtime.stopPodSandbox({ podSandboxId: p.podSandboxId });
      await c.runtime.removePodSandbox({ podSandboxId: p.podSandboxId });
    }
    // The start-up collection was less than MIN_INTERVAL_MS ago: this one may wait for the rest of it.
    const deadline = Date.now() + MIN_INTERVAL_MS + IDLE_MS + 3000;
    while (count() === 0 && Date.now() < deadline) await sleep(50);
    assert.equal(count(), 1, `one collection within ${(MIN_INTERVAL_MS + IDLE_MS + 3000) / 1000} s of the last removal`);
    await sleep(1500);
    assert.equal(count(), 1, "and no other");
    // berthd still answers.
    assert.equal((await c.runtime.listPodSandbox({})).items.length, 0);
  });
});
