// berthd pulls images in a process of its own (pull-worker.ts, forked from berthd): registry
// requests, token auth, signature checks, digests and unpacking run there, and berthd records the
// image the process answers with. What a pull loads (node:http, node:crypto and OpenSSL,
// node:zlib, the registry, trust and tar code, and the heap they leave) goes back to the system
// when the process ends, IDLE_MS after its last pull. Measured on one berthd each, a pull of
// busybox then 20 pods: 63.2 MB of RSS after the pull and 63.5 MB with the pods when berthd pulled
// itself; 56.1 and 59.7 MB with this process. Its parsers also get what a registry sends before
// berthd does: a crash there fails the pulls in flight, not berthd.
//
// One process serves every pull in flight, so pulls of images that share a layer still unpack it
// once (ImageService's single flights, inside the process). It unpacks one large layer at a time
// itself, paced by unpackPacer (hence --expose-gc), and hands the others to its unpack processes.
// Before a pull looks for or writes a blob or layer, the process asks berthd to hold it against
// the GC ("hold", answered "held" once any removal of it has ended; checkHold bounds what it may
// ask): the GC runs beside the pulls (RemoveImage, a removed container) and takes only what no
// pull holds.
// The process ends when berthd closes the IPC channel (berthd's exit, kill -9 included, closes
// it); its unpack processes end with it. It says it is alive every HEARTBEAT_MS; one silent for
// SILENCE_MS with pulls in flight is stuck, and berthd kills it (its pulls fail UNAVAILABLE).
// Its pid is noted under the image root (pidFileOf): a stuck one cannot see its channel close,
// so after a kill -9 of berthd the next berthd kills its group (reapLeftover). It is a process
// group of its own: when it dies with pulls in flight, berthd kills the group and waits for it to
// be gone before it removes the partial layers and ingests its pulls left.
import { fork, type ChildProcess } from "node:child_process";
import { readFile, rm } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { writeFileAtomic } from "../oci-runtime/foundation/atomic-file.ts";
import { BerthError, Code, unavailable } from "../oci-runtime/foundation/errdefs.ts";
import type { Logger } from "../oci-runtime/foundation/log.ts";
import { bootId, processStartTime } from "../oci-runtime/monitor/pids.ts";
import type { Image } from "./images/image-store.ts";
import type { PullAuth } from "./registry/client.ts";
import type { UnpackLimits } from "./snapshots/unpack.ts";
import { withPullMallocTunables } from "./snapshots/malloc-tunables.ts";
import type { TrustOutcome } from "./trust/trust.ts";

/** Layers an image may have: overlayfs stacks at most 500 lower layers (the kernel's OVL_MAX_STACK). */
export const MAX_IMAGE_LAYERS = 500;
/** The process ends this long after its last pull (kubelet pulls one image after another). */
export const IDLE_MS = 2_000;
/** A process not ready (its modules loaded) this long after its start is killed. */
export const READY_TIMEOUT_MS = 30_000;
/** The process says it is alive this often (its event loop turns), pulls or not. */
export const HEARTBEAT_MS = 2_000;
/**
 * A process with pulls in flight that sends nothing for this long is killed and its pulls fail
 * (UNAVAILABLE): the bound on a process that is alive but stuck. Registry stalls are bounded
 * inside it (stallTimeoutMs) and do not stop its heartbeat.
 */
export const SILENCE_MS = 60_000;
/** close() waits this long for the process to exit after SIGTERM, then kills it. */
const CLOSE_GRACE_MS = 5_000;
/** Kept of the process's stderr for the error when it ends before its pulls do. */
const STDERR_KEPT = 4096;

/** What pulls need to know, as plain data: the ImageServiceOptions the pull process gets too. */
export interface PullSettings {
  /** Persistent root: content/, snapshots/, images/, leases/ live here. */
  root: string;
  /** containerd-style hosts directory (<hostsDir>/<host>/hosts.toml); "" for none. */
  hostsDir: string;
  /** docker config.json with registry credentials. */
  authFile?: string;
  maxConcurrentDownloads: number;
  stallTimeoutMs: number;
  /** Retry tuning (tests). */
  retry?: { attempts?: number; backoffMs?: number };
  /** berth-layer helper (device nodes, xattrs, syncfs); default beside berth-io in /usr/local/libexec/berth. */
  layerHelper?: string;
  /** Per-layer limits (config image.max_layer_bytes, image.max_layer_entries). */
  layerLimits?: Partial<UnpackLimits>;
  /**
   * Layers of at least this many (compressed) bytes are unpacked in worker processes
   * (unpack-pool.ts), but for those the pull process unpacks itself at a time; smaller ones,
   * and all of them with one CPU, by the pulling process itself.
   * Default DEFAULT_WORKER_MIN_LAYER_BYTES; 0: every layer; Infinity: none.
   */
  unpackOnWorkersFrom?: number;
  /**
   * Large layers the pull process unpacks on its own thread at once (ImageService's unpackHere);
   * its unpack processes are as many fewer. Default PULL_PROCESS_UNPACKS; the tests set 1 to
   * have an unpack process on two CPUs.
   */
  pullProcessUnpacks?: number;
}

/**
 * Large layers the pull process unpacks itself at once: on two CPUs it starts no unpack process
 * (one per layer in flight up to the CPUs, less these). A process's start (a node of its own,
 * about 50 MB of fresh pages) cost more than the second thread of JavaScript won: on the machine
 * of 2 Dec 2026 (2 CPUs, a first touch of a page 15-20 us) six alternating cold pulls of the bench
 * image took 1.52-1.69 s (median 1.63 s), 1.26-1.34 s of user and 0.59-0.67 s of system CPU,
 * peaking at 156-166 MB RSS (berthd with its children), against 1.62-1.76 s (median 1.74 s),
 * 1.46-1.60 s, 0.64-0.85 s and 241-268 MB with one layer here and one unpack process.
 */
export const PULL_PROCESS_UNPACKS = 2;

/** PullSettings with the signature policy's files and the log level: what the process gets at its start. */
export type PullProcessConfig = PullSettings & {
  trust?: { policy: string; policyDir: string; registriesD: string };
  logLevel: string;
};

/** An image already here with the digest a pull asks for: its id and its layers' chain ids. */
export interface Present { id: string; chainIds: string[] }
/** What ImageService.fetchImage did: the image was here ("present"), or its record to store. */
export type Fetched = { kind: "present"; id: string } | { kind: "fetched"; topDigest: string; image: Image };

export interface PullJob { ref: string; auth?: PullAuth; namespace?: string; have?: Present }
export interface PullError { code: Code; message: string; cause?: string }
export type ToPullProcess =
  | { t: "init"; config: PullProcessConfig }
  | { t: "pull"; id: number; job: PullJob }
  | { t: "held"; id: number; seq: number; error?: string };
export type FromPullProcess =
  | { t: "ready" }
  | { t: "alive" }
  | { t: "hold"; id: number; seq: number; keys: string[] }
  | { t: "trust"; outcome: TrustOutcome }
  | { t: "done"; id: number; result: Fetched }
  | { t: "failed"; id: number; error: PullError };

/** The process could not start (or ended before it was ready): nothing was pulled. */
export class PullProcessUnavailable extends Error {
  constructor(why: string) {
    super(`the pull process is unavailable: ${why}`);
    this.name = "PullProcessUnavailable";
  }
}

/** The error a process reported, with the code berthd answers with. */
export function pullError(e: PullError): BerthError {
  const code = e.code !== Code.OK && (Object.values(Code) as number[]).includes(e.code) ? e.code : Code.INTERNAL;
  return new BerthError(code, String(e.message).slice(0, 4096), e.cause ? { cause: new Error(String(e.cause).slice(0, 4096)) } : undefined);
}

/** The pull-worker entry beside this module: .ts from the sources, .js in hack/build.sh's bundle. */
export function defaultPullModule(): URL {
  return new URL(import.meta.url.endsWith(".ts") ? "./pull-worker.ts" : "./pull-worker.js", import.meta.url);
}

/** How long berthd waits for a dead pull process's group (its unpack processes, their helpers) to be gone. */
export const GROUP_GONE_MS = 5_000;

/**
 * SIGKILL to the process group `pgid`, sent again every 10 ms until no process of it is left
 * (kill(-pgid) answers ESRCH): a queued signal does not stop a process in the middle of a system
 * call. false when some remain after GROUP_GONE_MS.
 */
export async function killGroup(pgid: number, boundMs = GROUP_GONE_MS): Promise<boolean> {
  const end = Date.now() + boundMs;
  for (;;) {
    try { process.kill(-pgid, "SIGKILL"); } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ESRCH") return true;
      throw err;
    }
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Where berthd notes the running pull process's pid (its group's id), start time and boot id
 * under the image root. A
 * process that is alive but stuck cannot see its channel close, so a kill -9 of berthd would leave
 * it running, free to write into the image root later; the next berthd kills its group first
 * (reapLeftover, before ImageService.init cleans up partial layers and ingests).
 */
export const pidFileOf = (root: string): string => path.join(root, "pull-process.pid");

/** What the pid file holds: the pid, and its start time and boot id (pids are reused; these three are not). */
async function processIdentity(pid: number): Promise<string | undefined> {
  const start = await processStartTime(pid);
  return start === undefined ? undefined : `${pid} ${start} ${await bootId()}`;
}

/**
 * Kills the group of a pull process an earlier berthd left running (pidFileOf), and forgets it.
 * Returns its pid when there was one: the same process (pid, start time, boot), still alive.
 */
export async function reapLeftover(root: string, log: Logger): Promise<number | undefined> {
  const file = pidFileOf(root);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  const noted = text.trim();
  const pid = /^\d{1,10} /.test(noted) ? Number(noted.split(" ")[0]) : 0;
  let reaped: number | undefined;
  if (pid > 1 && await processIdentity(pid) === noted) {
    log.warn("a pull process of an earlier berthd is still running: killing its group", { pid });
    if (!await killGroup(pid)) throw new Error(`the group of pull process ${pid}, left by an earlier berthd, did not end within ${GROUP_GONE_MS} ms`);
    reaped = pid;
  }
  await rm(file, { force: true });
  return reaped;
}

const isDigest = (v: unknown): v is string => typeof v === "string" && /^sha256:[a-f0-9]{64}$/.test(v);

/**
 * Most keys one pull may hold: the chain ids of the image it may find here, a blob and a chain id
 * per layer (MAX_IMAGE_LAYERS at most each), the config, and the top manifest with the ones an
 * index nests. More is a process gone wrong.
 */
export const MAX_HELD_PER_PULL = 3 * MAX_IMAGE_LAYERS + 16;

/**
 * Checks a process's hold request: digests only, within MAX_HELD_PER_PULL with the `already`
 * held. The keys, or why not.
 */
export function checkHold(keys: unknown, already: number): string[] | string {
  if (!Array.isArray(keys)) return "the keys are not a list";
  if (already + keys.length > MAX_HELD_PER_PULL) return `a pull may hold at most ${MAX_HELD_PER_PULL} blobs and layers, asked for ${already + keys.length}`;
  const bad = keys.find((k) => !isDigest(k));
  if (bad !== undefined) return `${JSON.stringify(String(bad).slice(0, 80))} is not a sha256 digest`;
  return keys as string[];
}

/**
 * Checks the shape of a process's answer before berthd records it: digests where digests go, a
 * "present" answer naming the image berthd said was here. Names and the pinned flag are berthd's
 * to set (#record): they come back empty whatever the process said.
 */
export function checkFetched(r: unknown, have: Present | undefined): Fetched {
  const f = r as Fetched;
  if (f?.kind === "present" && isDigest(f.id) && f.id === have?.id) return { kind: "present", id: f.id };
  const layerOk = (l: unknown) => {
    const x = l as Record<string, unknown>;
    return isDigest(x?.["digest"]) && isDigest(x["diffId"]) && isDigest(x["chainId"]) && typeof x["size"] === "number" && typeof x["mediaType"] === "string";
  };
  if (f?.kind === "fetched" && isDigest(f.topDigest) && isDigest(f.image?.id) && Array.isArray(f.image.layers) && f.image.layers.every(layerOk)
    && Array.isArray(f.image.chainIds) && f.image.chainIds.every(isDigest) && Array.isArray(f.image.blobs) && f.image.blobs.every(isDigest)
    && isDigest(f.image.manifestDigest)) {
    return { kind: "fetched", topDigest: f.topDigest, image: { ...f.image, repoTags: [], repoDigests: [], pinned: false } };
  }
  throw unavailable("the pull process answered with a malformed image record");
}

interface Waiter {
  resolve: (f: Fetched) => void; reject: (e: Error) => void; proc?: ChildProcess; have: Present | undefined;
  hold: (keys: string[]) => Promise<void>; held: number;
}

export class PullProcess {
  #config: PullProcessConfig;
  #log: Logger;
  #onTrust: ((o: TrustOutcome) => void) | undefined;
  #module: URL;
  #idleMs: number;
  #silenceMs: number;
  #proc: ChildProcess | undefined;
  #starting: Promise<ChildProcess> | undefined;
  #waiting = new Map<number, Waiter>();
  #next = 1;
  #idle: NodeJS.Timeout | undefined;
  #stderr = "";
  /** The pid in the pid file (pidFileOf), as the serialized writes below left it. */
  #recorded: number | undefined;
  #pidFileOps: Promise<void> = Promise.resolve();

  #onLost: (() => void) | undefined;

  /**
   * `onLost`: the process ended with pulls in flight; once it is called, nothing of the process
   * (its unpack processes and their helpers included) writes into the image root any more.
   */
  constructor(opts: { config: PullProcessConfig; log: Logger; onTrust?: (o: TrustOutcome) => void; onLost?: () => void; module?: URL; idleMs?: number; silenceMs?: number }) {
    this.#onLost = opts.onLost;
    this.#config = opts.config;
    this.#log = opts.log;
    this.#onTrust = opts.onTrust;
    this.#module = opts.module ?? defaultPullModule();
    this.#idleMs = opts.idleMs ?? IDLE_MS;
    this.#silenceMs = opts.silenceMs ?? SILENCE_MS;
  }

  /** Notes `pid` in the pid file, or (undefined) removes the file if it still names `was`; in order, never failing. */
  #record(pid: number | undefined, was?: number): Promise<void> {
    const file = pidFileOf(this.#config.root);
    const op = async () => {
      if (pid !== undefined) {
        const identity = await processIdentity(pid);
        if (identity === undefined) return; // already gone
        await writeFileAtomic(file, `${identity}\n`);
        this.#recorded = pid;
      } else if (this.#recorded === was) {
        await rm(file, { force: true });
        this.#recorded = undefined;
      }
    };
    this.#pidFileOps = this.#pidFileOps.then(op).catch((err: unknown) => {
      this.#log.warn("could not note the pull process's pid", { file, error: (err as Error).message });
    });
    return this.#pidFileOps;
  }

  /** The process's pid while it runs (tests). */
  get pid(): number | undefined { return this.#proc?.pid; }

  /**
   * Runs a pull in the process; PullProcessUnavailable when the process could not start. `hold`
   * takes the holds the process asks for against berthd's GC (ImageService's Holds); the process
   * goes on once it resolves. The caller releases them when the pull has ended.
   */
  async pull(job: PullJob, hold: (keys: string[]) => Promise<void>): Promise<Fetched> {
    clearTimeout(this.#idle);
    this.#idle = undefined;
    const id = this.#next++;
    // Counted before the start, so the idle timer of another pull's end cannot close it meanwhile.
    const done = new Promise<Fetched>((resolve, reject) => this.#waiting.set(id, { resolve, reject, have: job.have, hold, held: 0 }));
    done.catch(() => {});
    let proc: ChildProcess;
    try {
      proc = await this.#start();
    } catch (err) {
      this.#waiting.delete(id);
      this.#armIdle();
      throw err;
    }
    try {
      const w = this.#waiting.get(id);
      if (w) w.proc = proc;
      proc.send({ t: "pull", id, job } satisfies ToPullProcess);
      return await done;
    } finally {
      this.#waiting.delete(id);
      this.#armIdle();
    }
  }

  #armIdle() {
    if (this.#waiting.size > 0 || !this.#proc || this.#idle) return;
    this.#idle = setTimeout(() => {
      this.#idle = undefined;
      if (this.#waiting.size === 0) this.#end();
    }, this.#idleMs);
    this.#idle.unref();
  }

  /** Ends the process: it exits when its channel closes. */
  #end(): ChildProcess | undefined {
    const proc = this.#proc;
    this.#proc = undefined;
    this.#starting = undefined;
    if (proc?.connected) proc.disconnect();
    return proc;
  }

  #start(): Promise<ChildProcess> {
    if (this.#proc) return Promise.resolve(this.#proc);
    this.#starting ??= new Promise<ChildProcess>((resolve, reject) => {
      this.#stderr = "";
      let proc: ChildProcess;
      try {
        // A process group of its own, with its unpack processes and their helpers: when it dies
        // with pulls in flight, berthd kills the group before it cleans up after them. malloc
        // settings of its own (malloc-tunables.ts), not berthd's pinned threshold.
        proc = fork(fileURLToPath(this.#module), [], {
          execArgv: ["--disable-warning=ExperimentalWarning", "--expose-gc"],
          stdio: ["ignore", "inherit", "pipe", "ipc"],
          serialization: "advanced",
          detached: true,
          env: withPullMallocTunables(process.env),
        });
      } catch (err) {
        this.#starting = undefined;
        reject(new PullProcessUnavailable((err as Error).message));
        return;
      }
      let ready = false;
      const timer = setTimeout(() => {
        proc.kill("SIGKILL");
        failStart(`not ready within ${READY_TIMEOUT_MS} ms`);
      }, READY_TIMEOUT_MS);
      const failStart = (why: string) => {
        if (ready) return;
        ready = true; // once
        clearTimeout(timer);
        this.#starting = undefined;
        reject(new PullProcessUnavailable(why));
      };
      proc.stderr!.setEncoding("utf8").on("data", (d: string) => {
        process.stderr.write(d); // its log lines, into berthd's
        this.#stderr = (this.#stderr + d).slice(-STDERR_KEPT);
      });
      proc.on("error", (err) => failStart(err.message));
      let heard = Date.now();
      let killedWhy: string | undefined;
      const watchdog = setInterval(() => {
        if (!ready || killedWhy || Date.now() - heard <= this.#silenceMs) return;
        if (![...this.#waiting.values()].some((w) => w.proc === proc)) return;
        killedWhy = `sent nothing for ${this.#silenceMs / 1000} s with pulls in flight (its event loop is stuck); killed`;
        this.#log.warn("the pull process is stuck", { pid: proc.pid, silentMs: Date.now() - heard });
        proc.kill("SIGKILL");
      }, Math.min(1_000, this.#silenceMs / 4));
      watchdog.unref();
      proc.on("message", (m: FromPullProcess) => {
        heard = Date.now();
        if (m.t === "alive") return;
        if (m.t === "ready") {
          if (ready) return;
          ready = true;
          clearTimeout(timer);
          this.#proc = proc;
          this.#starting = undefined;
          resolve(proc);
        } else if (m.t === "trust") {
          this.#onTrust?.(m.outcome);
        } else if (m.t === "hold") {
          this.#hold(proc, m);
        } else if (m.t === "done" || m.t === "failed") {
          const w = this.#waiting.get(m.id);
          if (!w) return;
          if (m.t === "failed") w.reject(pullError(m.error));
          else {
            try { w.resolve(checkFetched(m.result, w.have)); } catch (err) { w.reject(err as Error); }
          }
        }
      });
      proc.on("exit", (code, signal) => {
        clearInterval(watchdog);
        const how = signal ? `signal ${signal}` : `code ${code}`;
        // Its group may live on (unpack processes about to exit): forgotten only once it is
        // gone, below, or when they end on their own (their channel closed with it).
        const forget = () => void this.#record(undefined, proc.pid);
        const tail = this.#stderr.trim().split("\n").slice(-3).join(" | ");
        failStart(`it exited with ${how} before it was ready${tail ? `: ${tail}` : ""}`);
        if (this.#proc === proc) this.#proc = undefined;
        // Pulls sent to this process fail; what they wrote is garbage collected, and their
        // partial layers and ingests removed (ImageService), once the rest of its group is dead.
        const lost = [...this.#waiting.values()].filter((w) => w.proc === proc);
        if (lost.length === 0) { forget(); return; }
        // Its stderr holds other pulls' images and registries: berthd's log only, not the answer.
        this.#log.warn("the pull process ended with pulls in flight", { how, pulls: lost.length, stderr: tail });
        void killGroup(proc.pid!).then((gone) => {
          if (gone) { forget(); this.#onLost?.(); }
          else this.#log.warn("the pull process's group did not end within its bound: its partial layers stay until berthd's next start", { pgid: proc.pid });
          const why = killedWhy ? `the pull process ${killedWhy}` : `the pull process exited with ${how} during the pull (berthd's log has its last lines)`;
          for (const w of lost) w.reject(unavailable(why));
        });
      });
      // Noted before it gets anything to do: whatever it writes, a later berthd knows of it.
      void this.#record(proc.pid!).then(() => { if (proc.connected) proc.send({ t: "init", config: this.#config } satisfies ToPullProcess); });
    });
    return this.#starting;
  }

  /** Takes the holds a pull in `proc` asks for, then says so (or why not: its pull then fails). */
  #hold(proc: ChildProcess, m: { id: number; seq: number; keys: string[] }) {
    const answer = (error?: string) => { if (proc.connected) proc.send({ t: "held", id: m.id, seq: m.seq, ...(error ? { error } : {}) } satisfies ToPullProcess); };
    const w = this.#waiting.get(m.id);
    if (!w || w.proc !== proc) { answer("no such pull in flight"); return; }
    const keys = checkHold(m.keys, w.held);
    if (typeof keys === "string") {
      this.#log.warn("the pull process asked for a malformed hold", { pull: m.id, why: keys });
      answer(keys);
      return;
    }
    w.held += keys.length;
    void w.hold(keys).then(() => answer(), (err: Error) => answer(err.message));
  }

  /** Ends the process; pulls in flight fail. */
  async close(): Promise<void> {
    clearTimeout(this.#idle);
    const proc = this.#proc ?? (this.#starting ? await this.#starting.catch(() => undefined) : undefined);
    this.#end();
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((r) => proc.once("exit", () => r()));
    proc.kill("SIGTERM");
    const t = setTimeout(() => proc.kill("SIGKILL"), CLOSE_GRACE_MS);
    await exited;
    clearTimeout(t);
    // Its unpack processes end when their channels close; the group's SIGKILL makes sure nothing
    // of it writes into the image root once close() returns.
    if (await killGroup(proc.pid!).catch(() => false)) await this.#record(undefined, proc.pid);
    this.#log.debug("pull process ended");
  }
}
