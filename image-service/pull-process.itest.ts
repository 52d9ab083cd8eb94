// Pulls in the pull process (pull-process.ts, ImageService's pullIn "process", as berthd runs
// them) against a real docker-registry on 127.0.0.1: the process runs the pulls and ends when
// idle; berthd's GC runs beside a pull in it and keeps what the pull holds; a kill -9 of the process fails its pull with
// UNAVAILABLE and the GC then takes what it wrote; a process that cannot start leaves the pull
// to berthd; one that stays silent with a pull in flight is killed.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { Code } from "../oci-runtime/foundation/errdefs.ts";
import { createLogger, setLogLevel } from "../oci-runtime/foundation/log.ts";
import { startRegistry, type RunningRegistry } from "../hack/registry/registry.ts";
import { type Fixtures, pushFixtures } from "../hack/registry/build-images.ts";
import { startProxy, type RunningProxy } from "../hack/registry/proxy.ts";
import { childProcesses } from "../conformance/lib/procs.ts";
import { ImageService } from "./image-service.ts";
import { buildTar } from "../hack/registry/tar-writer.ts";
import { buildImage, layerBlob } from "../hack/registry/oci-image.ts";
import { pushBlob, pushManifest } from "../hack/registry/push.ts";
import { PULL_MALLOC_TUNABLES } from "./snapshots/malloc-tunables.ts";
import { IDLE_MS, MAX_HELD_PER_PULL, MAX_IMAGE_LAYERS, pidFileOf, PULL_PROCESS_UNPACKS, PullProcess } from "./pull-process.ts";

const alive = (pid: number) => existsSync(`/proc/${pid}`);
const noHold = () => Promise.resolve();

async function until(what: string, ok: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/**
 * The malloc settings in effect in a process, from GLIBC_TUNABLES in its environment (glibc takes
 * a tunable's last setting). glibc ends each value it reads with a NUL in the environment itself,
 * so /proc/PID/environ shows the tunables after the first as entries of their own.
 */
function tunablesOf(pid: number): Map<string, string> {
  const entries = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
  const at = entries.findIndex((v) => v.startsWith("GLIBC_TUNABLES="));
  const out = new Map<string, string>();
  if (at < 0) return out;
  const parts = [entries[at]!.slice("GLIBC_TUNABLES=".length)];
  for (let i = at + 1; i < entries.length && entries[i]!.startsWith("glibc."); i++) parts.push(entries[i]!);
  for (const t of parts.join(":").split(":")) {
    const eq = t.indexOf("=");
    if (eq > 0) out.set(t.slice(0, eq), t.slice(eq + 1));
  }
  return out;
}
/**
 * Runs `fn` with the log at debug level, handing it what was written to stderr so far: the pull
 * process's log lines come to berthd's stderr (pull-process.ts copies them there).
 */
async function withDebugLog(fn: (copied: string[]) => Promise<void>): Promise<void> {
  const copied: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: never[]) => { copied.push(String(chunk)); return write.call(process.stderr, chunk, ...rest); }) as typeof write;
  setLogLevel("debug");
  try {
    await fn(copied);
  } finally {
    setLogLevel("info");
    process.stderr.write = write;
  }
}
const pullTunables = new Map(PULL_MALLOC_TUNABLES.split(":").map((t) => t.split("=") as [string, string]));

describe("pulls in the pull process", () => {
  let reg: RunningRegistry;
  let fx: Fixtures;
  let dir: string;
  const proxies: RunningProxy[] = [];
  const services: ImageService[] = [];
  let n = 0;
  const lines: string[] = [];
  const log = createLogger({}, (l) => { lines.push(l); });
  const service = async (extra: Partial<ConstructorParameters<typeof ImageService>[0]> = {}) => {
    const svc = new ImageService({ root: path.join(dir, `root-${n++}`), hostsDir: "", maxConcurrentDownloads: 3, stallTimeoutMs: 10_000, log, pullIn: "process", ...extra });
    await svc.init();
    services.push(svc);
    return svc;
  };

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "berth-pullproc-"));
    reg = await startRegistry();
    fx = await pushFixtures({ address: reg.address });
  });
  after(async () => {
    for (const s of services) await s.close();
    for (const p of proxies) await p.stop();
    await reg?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("runs concurrent pulls in one process, which ends when idle", async () => {
    const svc = await service();
    assert.equal(svc.pullProcessPid, undefined, "no process before the first pull");
    const pulls = Promise.all([svc.pull(fx.multi.ref), svc.pull(fx.zstd.ref), svc.pull(fx.index.ref)]);
    await until("the pull process", () => svc.pullProcessPid !== undefined, 10_000);
    const pid = svc.pullProcessPid!;
    assert.deepEqual(tunablesOf(pid), new Map([...tunablesOf(process.pid), ...pullTunables]), "the pull process has its own malloc settings, after what berthd has");
    const [a, b, c] = await pulls;
    assert.equal(a.imageRef, fx.multi.configDigest);
    assert.equal(b.imageRef, fx.zstd.configDigest);
    assert.equal(c.imageRef, fx.index.amd64.configDigest);
    assert.deepEqual(svc.get(fx.multi.ref)?.repoTags, [fx.multi.ref], "berthd recorded what the process pulled");
    assert.equal(svc.pullProcessPid, pid, "the same process served all three");
    assert.ok(alive(pid));
    await until("the idle pull process to exit", () => !alive(pid), IDLE_MS + 10_000);
    assert.equal(svc.pullProcessPid, undefined);
    // The next pull starts a new one; an image already here, asked for by digest, is answered
    // with its id.
    const again = await svc.pull(`${reg.address}/${fx.multi.repo}@${fx.multi.manifestDigest}`);
    assert.equal(again.imageRef, fx.multi.configDigest);
  });

  it("GC runs while a pull is in the process and takes only what no pull holds; a kill -9 of the process fails the pull (UNAVAILABLE) and GC takes what it wrote", async () => {
    const svc = await service();
    const root = path.join(dir, `root-${n - 1}`);
    await svc.pull(fx.single.ref);
    const single = svc.get(fx.single.ref)!;
    // The multi image shares single's base layer; its second layer's GET stalls, by which time
    // the process holds every blob and layer of the image (its manifest and config are stored).
    const l2 = fx.multi.image.blobs[1]!;
    const p = await startProxy({ upstream: reg.address, stall: { digest: l2.digest } });
    proxies.push(p);
    const stalled = svc.pull(`${p.address}/${fx.multi.repo}:latest`);
    stalled.catch(() => {});
    await until("the stalled layer GET", () => p.blobGets(l2.digest) > 0, 10_000);
    const snaps = () => readdir(path.join(root, "snapshots"));
    const blobs = () => readdir(path.join(root, "content", "blobs", "sha256"));
    assert.ok((await blobs()).includes(fx.multi.configDigest.slice(7)), "the pull in the process stored its config");
    // RemoveImage of the other image: the GC runs now, not once the pull has ended. It takes
    // single's own manifest and config, and leaves the base layer the pull holds.
    await svc.remove(fx.single.ref);
    assert.equal(svc.get(fx.single.ref), undefined);
    for (const b of [fx.single.manifestDigest, fx.single.configDigest]) assert.ok(!(await blobs()).includes(b.slice(7)), `blob ${b} of the removed image collected while a pull runs`);
    for (const c of single.chainIds) assert.ok((await snaps()).includes(c.slice(7)), `layer ${c}, held by the pull, kept`);
    for (const b of [fx.multi.manifestDigest, fx.multi.configDigest]) assert.ok((await blobs()).includes(b.slice(7)), `blob ${b}, held by the pull, kept`);
    const pid = svc.pullProcessPid!;
    process.kill(pid, "SIGKILL");
    await assert.rejects(stalled, (err: Error & { code?: number }) => {
      assert.equal(err.code, Code.UNAVAILABLE);
      assert.match(err.message, /the pull process exited with signal SIGKILL during the pull/);
      assert.doesNotMatch(err.message, /\|/, "no stderr lines of the shared process in the answer");
      return true;
    });
    for (const c of single.chainIds) assert.ok(!(await snaps()).includes(c.slice(7)), `layer ${c} collected after the pull ended`);
    assert.ok(!(await blobs()).includes(fx.multi.manifestDigest.slice(7)), "the failed pull's manifest is collected");
    assert.equal(svc.list().length, 0);
    // A new process takes the next pull.
    const { imageRef } = await svc.pull(fx.multi.ref);
    assert.equal(imageRef, fx.multi.configDigest);
    assert.notEqual(svc.pullProcessPid, pid);
  });

  it("an image of more layers than overlayfs stacks is refused before a layer is fetched", async () => {
    const svc = await service();
    const layer = layerBlob(buildTar([{ name: "f", data: "x" }]), "gzip");
    const img = buildImage(Array.from({ length: MAX_IMAGE_LAYERS + 1 }, () => layer));
    const target = { address: reg.address };
    const p = await startProxy({ upstream: reg.address });
    proxies.push(p);
    await pushBlob(target, "berth/deep", layer);
    await pushBlob(target, "berth/deep", img.config);
    await pushManifest(target, "berth/deep", "latest", img.manifest);
    await assert.rejects(svc.pull(`${p.address}/berth/deep:latest`), (err: Error & { code?: number }) => {
      assert.equal(err.code, Code.UNAVAILABLE);
      assert.equal(err.message, `image ${p.address}/berth/deep:latest has ${MAX_IMAGE_LAYERS + 1} layers: overlayfs stacks at most ${MAX_IMAGE_LAYERS}`);
      return true;
    });
    assert.equal(p.blobGets(layer.digest), 0, "no layer fetched");
    assert.equal(svc.list().length, 0);
  });

  it("by default the pull process unpacks PULL_PROCESS_UNPACKS large layers itself at once: on two CPUs every one, with no unpack process", async () => {
    await withDebugLog(async (copied) => {
      const svc = await service({ unpackOnWorkersFrom: 0 });
      // The three layers' GETs wait until all three are in flight, as in the test below.
      const p = await startProxy({ upstream: reg.address, blobHold: { until: 3, maxMs: 2_000 } });
      proxies.push(p);
      const pulled = svc.pull(`${p.address}/${fx.multi.repo}:latest`);
      await until("the pull process", () => svc.pullProcessPid !== undefined, 10_000);
      const pid = svc.pullProcessPid!;
      // Its unpack processes run unpack-worker; berth-layer helpers are its children too.
      let most = 0;
      const watch = setInterval(() => {
        const n = childProcesses([pid]).filter((c) => { try { return readFileSync(`/proc/${c.pid}/cmdline`, "utf8").includes("unpack-worker"); } catch { return false; } }).length;
        most = Math.max(most, n);
      }, 5);
      try {
        assert.equal((await pulled).imageRef, fx.multi.configDigest);
      } finally {
        clearInterval(watch);
      }
      assert.equal(p.peakBlobGets(), 3, "the three layers were downloading at once");
      const where = copied.join("").split("\n").filter((l) => l.includes('"layer unpacked"')).map((l) => (JSON.parse(l) as { where: string }).where);
      assert.equal(where.length, 3, "each of the three layers unpacked once");
      const processes = Math.max(0, Math.min(3, availableParallelism()) - PULL_PROCESS_UNPACKS);
      assert.equal(most, Math.min(processes, 1), `unpack processes seen (${availableParallelism()} CPUs)`);
      if (processes === 0) assert.deepEqual(where, ["here", "here", "here"]);
      else assert.equal(where.filter((w) => w === "here").length >= PULL_PROCESS_UNPACKS, true, where.join(", "));
    });
  });

  it("the pull process unpacks one large layer itself and hands the others to its unpack processes", async () => {
    // Every layer counts as large here; three download at once. The pull process is given one slot
    // of its own (unpackHere), so one fewer unpack process than layers in flight on 2 CPUs.
    await withDebugLog(async (copied) => {
      const svc = await service({ unpackOnWorkersFrom: 0, pullProcessUnpacks: 1 });
      // Each layer's GET waits until all three are in flight: none finishes before every layer has
      // taken its place (the pull process's slot, or the pool). The config's GET, alone, waits the
      // hold's 2 s out.
      const p = await startProxy({ upstream: reg.address, blobHold: { until: 3, maxMs: 2_000 } });
      proxies.push(p);
      const { imageRef } = await svc.pull(`${p.address}/${fx.multi.repo}:latest`);
      assert.equal(imageRef, fx.multi.configDigest);
      assert.equal(p.peakBlobGets(), 3, "the three layers were downloading at once");
      const unpacked = copied.join("").split("\n").filter((l) => l.includes('"layer unpacked"')).map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.equal(unpacked.length, 3, "each of the three layers unpacked once");
      const where = unpacked.map((j) => j.where).sort();
      assert.ok(where.includes("here"), `a layer unpacked in the pull process itself: ${where.join(", ")}`);
      assert.ok(where.includes("unpack process"), `a layer unpacked in an unpack process: ${where.join(", ")}`);
      assert.ok(where.every((w) => w === "here" || w === "unpack process"), where.join(", "));
    });
  });

  it("a kill -9 of the process mid-layer kills its unpack processes and removes the partial layer", async () => {
    // Every layer counts as large: one is unpacked in the pull process itself, the others in an
    // unpack process (the pull process's child), which downloads them itself. Every layer's GET
    // stalls after its headers, so the unpack process is mid-layer whichever layer the pull
    // process took.
    const svc = await service({ unpackOnWorkersFrom: 0, pullProcessUnpacks: 1 });
    const root = path.join(dir, `root-${n - 1}`);
    const layers = fx.multi.image.blobs.filter((b) => b.digest !== fx.multi.configDigest);
    const p = await startProxy({ upstream: reg.address, stall: { digest: layers.map((l) => l.digest) } });
    proxies.push(p);
    const stalled = svc.pull(`${p.address}/${fx.multi.repo}:latest`);
    stalled.catch(() => {});
    await until("every layer's stalled GET", () => layers.every((l) => p.blobGets(l.digest) > 0), 10_000);
    const partial = async () => (await readdir(path.join(root, "snapshots"))).filter((d) => d.startsWith("tmp-"));
    const deadline = Date.now() + 10_000;
    while ((await partial()).length < layers.length) {
      assert.ok(Date.now() < deadline, `not ${layers.length} partial layers within 10 s`);
      await sleep(20);
    }
    const pullPid = svc.pullProcessPid!;
    const unpackers = childProcesses([pullPid]).map((c) => c.pid);
    assert.ok(unpackers.length > 0, "the pull process has an unpack process");
    for (const u of [pullPid, ...unpackers]) {
      const t = tunablesOf(u);
      for (const [k, v] of pullTunables) assert.equal(t.get(k), v, `process ${u}: ${k}`);
    }
    // Stopped, an unpack process does not see its channel close and exit on its own: only the
    // group's SIGKILL ends it.
    for (const u of unpackers) process.kill(u, "SIGSTOP");
    process.kill(pullPid, "SIGKILL");
    await assert.rejects(stalled, (err: Error & { code?: number }) => err.code === Code.UNAVAILABLE && /exited with signal SIGKILL/.test(err.message));
    await until("the unpack processes to be gone", () => unpackers.every((u) => !alive(u) || readFileSync(`/proc/${u}/stat`, "utf8").split(") ")[1]!.startsWith("Z")), 5_000);
    assert.deepEqual(await partial(), [], "the partial layers are removed");
    assert.deepEqual((await readdir(path.join(root, "snapshots"))).filter((d) => /^[a-f0-9]{64}$/.test(d)), [], "no layer was committed");
    assert.match(lines.join(""), /"msg":"the pull process ended with pulls in flight"/);
    assert.doesNotMatch(lines.join(""), /did not end within its bound/);
  });

  it("a process that cannot start leaves the pull to berthd; after three in a row, every pull", async () => {
    const broken = path.join(dir, "broken-worker.mjs");
    await writeFile(broken, "process.stderr.write('no pulls here\\n'); process.exit(3);\n");
    const svc = await service({ pullModule: pathToFileURL(broken) });
    lines.length = 0;
    const { imageRef } = await svc.pull(fx.user.ref);
    assert.equal(imageRef, fx.user.configDigest);
    assert.equal(svc.get(fx.user.ref)?.id, fx.user.configDigest);
    const warned = lines.map((l) => JSON.parse(l) as { msg: string; error?: { message: string } }).find((l) => l.msg.startsWith("the pull process did not start"));
    assert.ok(warned, `no warning in ${lines.join("")}`);
    assert.match(warned.error!.message, /exited with code 3 before it was ready: no pulls here/);
    // After MAX_PULL_START_FAILURES in a row berthd stops trying: every pull is its own.
    for (const img of [fx.zstd, fx.docker]) assert.equal((await svc.pull(img.ref)).imageRef, img.configDigest);
    const said = () => lines.filter((l) => l.includes("berthd pulls every image itself from now on")).length;
    assert.equal(said(), 1);
    const tries = () => lines.filter((l) => l.includes("the pull process did not start")).length;
    const before = tries();
    assert.equal((await svc.pull(fx.empty.ref)).imageRef, fx.empty.configDigest);
    assert.equal(tries(), before, "no process started for the next pull");
  });
});

describe("the pull process's heartbeat", () => {
  let dir: string;
  let module: URL;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "berth-pullbeat-"));
    // A stand-in pull process: "stuck" spins for 20 s without a turn of its event loop (so it
    // cannot see its channel close); "slow" says it is alive every 100 ms and fails its pull after
    // 1.5 s; "hold KEYS" asks berthd to hold KEYS and fails its pull with berthd's answer;
    // "hold-other KEYS" asks in the name of a pull that is not its own.
    const file = path.join(dir, "pull-worker.mjs");
    await writeFile(file, `
process.on("disconnect", () => process.exit(0));
process.on("message", (m) => {
  if (m.t === "init") { process.send({ t: "ready" }); return; }
  if (m.t === "held") { process.send({ t: "failed", id: m.id, error: { code: 14, message: "held: " + (m.error ?? "ok") } }); return; }
  if (m.job.ref.startsWith("hold ")) { process.send({ t: "hold", id: m.id, seq: 1, keys: JSON.parse(m.job.ref.slice(5)) }); return; }
  if (m.job.ref.startsWith("hold-other ")) { process.send({ t: "hold", id: m.id + 1000, seq: 1, keys: JSON.parse(m.job.ref.slice(11)) }); setTimeout(() => process.send({ t: "failed", id: m.id, error: { code: 14, message: "no answer" } }), 200); return; }
  if (m.job.ref === "stuck") { const end = Date.now() + 20000; while (Date.now() < end) {} return; } // bounded, should the kill not come
  const beat = setInterval(() => process.send({ t: "alive" }), 100);
  setTimeout(() => { clearInterval(beat); process.send({ t: "failed", id: m.id, error: { code: 5, message: "not here" } }); }, 1500);
});
`);
    module = pathToFileURL(file);
  });
  after(async () => { await rm(dir, { recursive: true, force: true }); });

  const pullProcess = (onLost: () => void, o: { root?: string; silenceMs?: number } = {}) => new PullProcess({
    config: { root: o.root ?? dir, hostsDir: "", maxConcurrentDownloads: 1, stallTimeoutMs: 1_000, logLevel: "error" },
    log: createLogger({}, () => {}), module, silenceMs: o.silenceMs ?? 500, onLost,
  });

  it("a process silent longer than the bound with a pull in flight is killed, with its group, and the pull fails UNAVAILABLE saying so", { timeout: 30_000 }, async () => {
    let lost = 0;
    const pp = pullProcess(() => { lost++; });
    try {
      const started = Date.now();
      const pull = pp.pull({ ref: "stuck" }, noHold);
      await until("the process", () => pp.pid !== undefined, 10_000);
      const pid = pp.pid!;
      await assert.rejects(pull, (err: Error & { code?: number }) => {
        assert.equal(err.code, Code.UNAVAILABLE);
        assert.match(err.message, /the pull process sent nothing for 0\.5 s with pulls in flight \(its event loop is stuck\); killed/);
        return true;
      });
      assert.ok(Date.now() - started < 10_000, "killed within the bound, not at some later time");
      assert.equal(lost, 1, "onLost: berthd may clean up after it");
      assert.ok(!alive(pid) || readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.startsWith("Z"), "the stuck process is gone");
    } finally {
      await pp.close();
    }
  });

  it("berthd notes the process's pid; a later berthd kills a stuck one an earlier berthd left, before it cleans up", { timeout: 30_000 }, async () => {
    const root = path.join(dir, "root-leftover");
    const earlier = pullProcess(() => {}, { root, silenceMs: 60_000 }); // no watchdog within this test: as after a kill -9 of berthd
    const stuck = earlier.pull({ ref: "stuck" }, noHold);
    stuck.catch(() => {});
    await until("the process", () => earlier.pid !== undefined, 10_000);
    const pid = earlier.pid!;
    const start = () => readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")[19];
    const boot = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
    await until("the pid file", () => existsSync(pidFileOf(root)) && readFileSync(pidFileOf(root), "utf8") === `${pid} ${start()} ${boot}\n`, 10_000);
    const logLines: string[] = [];
    const svc = new ImageService({ root, hostsDir: "", maxConcurrentDownloads: 1, stallTimeoutMs: 1_000, log: createLogger({}, (l) => { logLines.push(l); }), pullIn: "process" });
    await svc.init();
    await svc.close();
    assert.ok(!alive(pid) || readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.startsWith("Z"), "the stuck process is gone");
    const said = logLines.map((l) => JSON.parse(l) as { msg: string; pid?: number }).find((l) => l.msg === "a pull process of an earlier berthd is still running: killing its group");
    assert.equal(said?.pid, pid, logLines.join(""));
    assert.ok(!existsSync(pidFileOf(root)), "the pid file is removed");
    await assert.rejects(stuck, (err: Error & { code?: number }) => err.code === Code.UNAVAILABLE);
    await earlier.close();
    // A file naming a process by pid whose start time is not the noted one (the pid was reused) is only forgotten.
    const me = readFileSync(`/proc/${process.pid}/stat`, "utf8").split(") ")[1]!.split(" ")[19];
    await writeFile(pidFileOf(root), `${process.pid} ${Number(me) + 1} ${boot}\n`);
    const again = new ImageService({ root, hostsDir: "", maxConcurrentDownloads: 1, stallTimeoutMs: 1_000, log: createLogger({}, () => {}), pullIn: "process" });
    await again.init();
    await again.close();
    assert.ok(!existsSync(pidFileOf(root)));
    assert.ok(alive(process.pid));
  });

  it("a process that takes longer than the bound but says it is alive is left to finish", { timeout: 30_000 }, async () => {
    let lost = 0;
    const pp = pullProcess(() => { lost++; });
    try {
      await assert.rejects(pp.pull({ ref: "slow" }, noHold), (err: Error & { code?: number }) => err.code === Code.NOT_FOUND && err.message === "not here");
      assert.equal(lost, 0);
    } finally {
      await pp.close();
    }
  });

  it("berthd takes the holds a pull asks for, and refuses malformed ones and ones for another pull", { timeout: 30_000 }, async () => {
    const pp = pullProcess(() => {});
    const d = (c: string) => `sha256:${c.repeat(64)}`;
    const asked: string[][] = [];
    const hold = (keys: string[]) => { asked.push(keys); return Promise.resolve(); };
    const answer = async (ref: string, h: (keys: string[]) => Promise<void> = hold) => {
      const err = await pp.pull({ ref }, h).then(() => undefined, (e: Error) => e);
      assert.ok(err, `${ref}: the stand-in fails every pull`);
      return err.message;
    };
    try {
      assert.equal(await answer(`hold ${JSON.stringify([d("a"), d("b")])}`), "held: ok");
      assert.deepEqual(asked, [[d("a"), d("b")]]);
      assert.equal(await answer(`hold ${JSON.stringify([d("a"), "../../etc"])}`), `held: "../../etc" is not a sha256 digest`);
      assert.equal(await answer(`hold ${JSON.stringify({ a: 1 })}`), "held: the keys are not a list");
      const many = Array.from({ length: MAX_HELD_PER_PULL + 1 }, () => d("c"));
      assert.equal(await answer(`hold ${JSON.stringify(many)}`), `held: a pull may hold at most ${MAX_HELD_PER_PULL} blobs and layers, asked for ${MAX_HELD_PER_PULL + 1}`);
      assert.equal(await answer(`hold-other ${JSON.stringify([d("d")])}`), "no answer");
      assert.deepEqual(asked, [[d("a"), d("b")]], "only the well-formed hold of the pull's own was taken");
      assert.equal(await answer(`hold ${JSON.stringify([d("e")])}`, () => Promise.reject(new Error("gone"))), "held: gone");
    } finally {
      await pp.close();
    }
  });
});
