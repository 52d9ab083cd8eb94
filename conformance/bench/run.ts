// npm run bench: berth beside containerd's CRI plugin, in the same run, on the same
// loopback registry and images. Prints a table and JSON and writes the JSON to --out.
// No assertions on timings: numbers are reported, never judged.
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { cpus, loadavg, release, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { parseBenchArgs, usage, UsageError, type BenchmarkId, type BenchOptions, type RuntimeName } from "./args.ts";
import { berthTarget } from "./berth.ts";
import { CONTAINERD, containerdTarget } from "./containerd.ts";
import { BenchContext, cellOf } from "./context.ts";
import { setupEnv } from "./env.ts";
import { measureFloor, type Floor } from "./floor.ts";
import { MB } from "./host.ts";
import { REPO } from "../lib/berthd.ts";
import { interrupt } from "./interrupt.ts";
import { renderTable, Results } from "./report.ts";
import { inRounds } from "./alternate.ts";
import { CONCURRENT_METRICS, concurrentRounds } from "./scenarios/concurrent.ts";
import { EXEC_METRICS, execRounds } from "./scenarios/exec.ts";
import { LIST_METRICS, listRounds } from "./scenarios/list.ts";
import { MEMORY_METRICS, memory, recordIdle } from "./scenarios/memory.ts";
import { POD_START_METRICS, podStart } from "./scenarios/pod-start.ts";
import { PULL_METRICS, pull } from "./scenarios/pull.ts";
import { scale, scaleMetrics } from "./scenarios/scale.ts";
import { buildSnapshot } from "./snapshot.ts";
import type { BenchEnv, Target } from "./target.ts";

const log = (msg: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

/** Cleanups still owed, run in reverse on exit or on SIGINT/SIGTERM. */
const cleanups: (() => Promise<void>)[] = [];
async function runCleanups(): Promise<void> {
  while (cleanups.length) {
    const c = cleanups.pop()!;
    await c().catch((err: unknown) => log(`cleanup: ${(err as Error).message}`));
  }
}
/** Registers a cleanup; the returned function runs it now (once, however often it is called). */
function owe(fn: () => Promise<unknown>): () => Promise<void> {
  let done: Promise<void> | undefined;
  const entry = () => (done ??= fn().then(() => {}));
  cleanups.push(entry);
  return () => {
    const i = cleanups.indexOf(entry);
    if (i >= 0) cleanups.splice(i, 1);
    return entry();
  };
}

type Metrics = readonly (readonly [string, string])[];
const FIXED_METRICS = {
  "pod-start": POD_START_METRICS, exec: EXEC_METRICS, memory: MEMORY_METRICS,
  concurrent: CONCURRENT_METRICS, list: LIST_METRICS, pull: PULL_METRICS,
} as const;
const metricsOf = (b: BenchmarkId, opts: BenchOptions): Metrics => (b === "scale" ? scaleMetrics(opts.scale, opts.scaleFull) : FIXED_METRICS[b]);

const targets: Record<RuntimeName, (env: BenchEnv) => Promise<Target>> = { berth: berthTarget, containerd: containerdTarget };

/** Starts one instance of `target` for the pod benchmarks; a failure fills its rows. */
async function startForPods(target: Target, env: BenchEnv, opts: BenchOptions, results: Results, versions: Record<string, string>) {
  const benches = opts.only.filter((b) => b !== "pull");
  const instance = await target.start().catch((err: unknown) => {
    log(`${target.name}: start failed: ${(err as Error).message}`);
    for (const b of benches) results.fill(b, metricsOf(b, opts), target.name, cellOf(err));
    return undefined;
  });
  if (!instance) return undefined;
  const ctx = new BenchContext(target, instance, env, opts, results, log);
  const stop = owe(async () => {
    await ctx.removeCreated("teardown");
    await instance.stop();
  });
  const v = await instance.client.runtime.version({}, { timeoutMs: 10_000 }).catch(() => undefined);
  if (v) versions[target.name] = `${v.runtimeName} ${v.runtimeVersion}${instance.note ? ` (${instance.note})` : ""}`;
  if (instance.note?.includes("sources")) log(`${target.name}: runs from the TypeScript sources (about 28 MB more RSS than compiled code)`);
  return { ctx, idle: await recordIdle(ctx), stop };
}

async function removePool(ctx: BenchContext): Promise<void> {
  if (!ctx.pool.length) return;
  await ctx.removeCreated("teardown");
  ctx.pool.length = 0;
}

/**
 * The pod benchmarks with one instance per runtime alive side by side; each benchmark runs on
 * every runtime before the next starts, so a change in the machine's load hits both alike; exec,
 * concurrent and list in rounds that take turns between the runtimes (alternate.ts).
 */
async function benchPods(ready: Target[], env: BenchEnv, opts: BenchOptions, results: Results, versions: Record<string, string>): Promise<void> {
  if (!opts.only.some((b) => b !== "pull") || interrupt.requested) return;
  const running: NonNullable<Awaited<ReturnType<typeof startForPods>>>[] = [];
  try {
    for (const t of ready) {
      const r = await startForPods(t, env, opts, results, versions);
      if (r) running.push(r);
    }
    const want = (b: string) => (opts.only as string[]).includes(b);
    const each = async (fn: (r: (typeof running)[number]) => Promise<unknown>) => { for (const r of running) await fn(r); };
    const ctxs = running.map((r) => r.ctx);
    if (want("pod-start")) await each(({ ctx }) => ctx.run("pod-start", POD_START_METRICS, 180_000, () => podStart(ctx)));
    if (want("exec")) await inRounds(ctxs, opts.rounds, execRounds);
    if (want("memory")) await each(({ ctx, idle }) => ctx.run("memory", MEMORY_METRICS, 240_000, () => memory(ctx, idle)));
    await each(({ ctx }) => removePool(ctx));
    if (want("concurrent")) await inRounds(ctxs, opts.rounds, concurrentRounds);
    if (want("list")) await inRounds(ctxs, opts.rounds, listRounds);
    if (want("scale")) await scale(ctxs);
  } finally {
    for (const r of running.reverse()) await r.stop();
  }
}

/** The pod benchmarks, then the pulls, each alternating between the runtimes. */
async function benchAll(env: BenchEnv, opts: BenchOptions, results: Results, versions: Record<string, string>): Promise<void> {
  const ready: Target[] = [];
  const closers: (() => Promise<void>)[] = [];
  try {
    for (const name of opts.runtimes) {
      try {
        const target = await targets[name](env);
        closers.push(owe(() => target.close()));
        ready.push(target);
      } catch (err) {
        log(`${name}: setup failed: ${(err as Error).message}`);
        for (const b of opts.only) results.fill(b, metricsOf(b, opts), name, cellOf(err));
      }
    }
    await benchPods(ready, env, opts, results, versions);
    if (opts.only.includes("pull") && !interrupt.requested) await pull(ready, env, opts.pullReps, results, log);
  } finally {
    for (const close of closers.reverse()) await close();
  }
}

async function main(argv: string[]): Promise<number> {
  let opts: BenchOptions;
  try {
    opts = parseBenchArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) { process.stderr.write(`bench: ${err.message}\n${usage}`); return 2; }
    throw err;
  }
  if (opts.help) { process.stdout.write(usage); return 0; }
  if (process.getuid?.() !== 0) { process.stderr.write("bench: must run as root (it starts runtimes, pods and networks)\n"); return 2; }
  if (opts.runtimes.includes("containerd") && !existsSync(CONTAINERD)) {
    process.stdout.write("containerd: not installed\n");
    opts.runtimes = opts.runtimes.filter((r) => r !== "containerd");
    if (!opts.runtimes.length) return 1;
  }
  const startedAt = new Date();
  const loadavgAtStart = loadavg();
  log(`setting up registry and images (${opts.only.join(", ")}; ${opts.runtimes.join(" and ")})`);
  if (opts.runtimes.includes("berth") && !process.env["BERTHD_DIST"]) {
    log("compiling berthd into a snapshot every berth instance of this run uses");
    const snap = await buildSnapshot();
    owe(() => snap.remove());
    process.env["BERTHD_DIST"] = snap.dir;
  }
  // What berthd's memory stands on before any of berth's code: printed beside its figures.
  let floor: Floor | undefined;
  if (opts.runtimes.includes("berth") && opts.only.some((b) => b === "memory" || b === "scale")) {
    log("measuring the node floor (berthd's V8 flags, its built-ins, protobuf-es and the CRI proto, a socket bound)");
    await mkdir(join(REPO, ".bench"), { recursive: true });
    const dir = await mkdtemp(join(REPO, ".bench", "floor-"));
    try { floor = await measureFloor(dir); } finally { await rm(dir, { recursive: true, force: true }); }
  }
  const env = await setupEnv(opts.only.includes("pull"));
  const closeEnv = owe(() => env.close());
  const results = new Results();
  const versions: Record<string, string> = {};
  try {
    await benchAll(env, opts, results, versions);
  } finally {
    await closeEnv();
  }
  const rows = results.rows.filter((r) => opts.only.includes(r.bench));
  const report = {
    startedAt: startedAt.toISOString(),
    seconds: (Date.now() - startedAt.getTime()) / 1000,
    host: { kernel: release(), cpus: cpus().length, memoryMB: Math.round(totalmem() / 2 ** 20), node: process.version, loadavgAtStart, loadavgAtEnd: loadavg() },
    versions,
    options: { only: opts.only, pods: opts.pods, runtimes: opts.runtimes, rounds: opts.rounds, pullReps: opts.pullReps, listContainers: opts.listContainers, scale: opts.scale, scaleFull: opts.scaleFull },
    pullImage: { bytes: env.images.bigBytes, layers: env.images.bigLayers, note: "MB/s counts 1e6 bytes of manifest and compressed layers" },
    ...(floor ? { nodeFloor: { rssMB: floor.rss / MB, pssMB: floor.pss / MB, pssAnonMB: floor.pssAnon / MB, flags: floor.flags, glibcTunables: floor.tunables, note: "node with berthd's V8 flags and malloc tunables, the built-ins berthd loads, protobuf-es and the CRI api (bundled), a unix socket listening; nothing of berth" } } : {}),
    results: results.toJson().filter((r) => opts.only.includes(r.bench)),
  };
  const json = JSON.stringify(report, null, 2);
  const header = [
    `${startedAt.toISOString()}  ${cpus().length} CPUs, ${Math.round(totalmem() / 2 ** 30)} GiB, Linux ${release()}, node ${process.version}`,
    ...Object.entries(versions).map(([k, v]) => `${k}: ${v}`),
    ...(floor ? [`node floor under berthd (its V8 flags and malloc tunables, built-ins, protobuf-es and the CRI proto, a socket; nothing of berth): RSS ${(floor.rss / MB).toFixed(1)} MB, PSS ${(floor.pss / MB).toFixed(1)} MB, PSS anon ${(floor.pssAnon / MB).toFixed(1)} MB`] : []),
  ].join("\n");
  process.stdout.write("\n" + header + "\n\n" + renderTable(rows, opts.runtimes) + "\n" + json + "\n");
  const outDir = resolve(opts.out);
  await mkdir(outDir, { recursive: true });
  const file = join(outDir, `bench-${startedAt.toISOString().replace(/[:.]/g, "-")}.json`);
  await writeFile(file, json + "\n");
  log(`results written to ${file}`);
  return 0;
}

// First signal: stop at the next step and clean up in order. Second: clean up now and exit.
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    if (!interrupt.requested) {
      interrupt.requested = true;
      log(`${sig}: stopping after the current step, then cleaning up (again to force)`);
      return;
    }
    log(`${sig}: cleaning up now`);
    void runCleanups().finally(() => process.exit(130));
  });
}

main(process.argv.slice(2)).then(
  async (code) => { await runCleanups(); process.exit(interrupt.requested ? 130 : code); },
  async (err: unknown) => {
    process.stderr.write(`bench: ${(err as Error)?.stack ?? String(err)}\n`);
    await runCleanups();
    process.exit(1);
  },
);
