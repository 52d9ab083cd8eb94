// ImageService: the facade berthd uses. Pulls (resolve -> manifests -> config -> layers
// streamed through digest check, decompression and unpacking), image metadata, GC and
// container rootfs overlays.
import { sha256HexText } from "../oci-runtime/foundation/sha256.ts";
import { mkdir } from "node:fs/promises";
import { availableParallelism } from "node:os";
import path from "node:path";
import { BerthError, failedPrecondition, internal, notFound, unavailable } from "../oci-runtime/foundation/errdefs.ts";
import type { Logger } from "../oci-runtime/foundation/log.ts";
import { ContentStore } from "./content/content-store.ts";
import { diskUsage } from "./disk-usage.ts";
import { type Image, type ImageLayer, ImageStore, type OciImageConfigFile } from "./images/image-store.ts";
import { LeaseStore } from "./images/leases.ts";
import { parseImageUser } from "./images/user.ts";
import {
  type Reference, formatReference, isDigest, parseReference, repoDigest, repoName, repoTag,
} from "./reference.ts";
import { credentialKey } from "./registry/auth.ts";
import { type ManifestResult, type PullAuth, RegistryClient } from "./registry/client.ts";
import {
  type Compression, type Descriptor, type ManifestDoc, hostPlatform, layerCompression, parseManifest, selectPlatform,
} from "./registry/media-types.ts";
import { DEFAULT_LAYER_HELPER, FsSyncer } from "./snapshots/layer-helper.ts";
import { BreakoutError } from "./snapshots/safe-path.ts";
import { chainIds, isMountPoint, isOtherFilesystem, Snapshotter } from "./snapshots/snapshotter.ts";
import { TarError } from "./snapshots/tar-reader.ts";
import { unpackLayer, type RawInput, type UnpackLimits, type UnpackOptions, type UnpackResult } from "./snapshots/unpack.ts";
import { type DirectDownload, UnpackPool, UnpackWorkersUnavailable } from "./snapshots/unpack-pool.ts";
import { type IdmapLayers, mountLayersReadOnly, unmountVolume, volumeLeaseKey, volumeLeasePrefix } from "./volumes/image-volume.ts";
import { SingleFlight } from "../oci-runtime/foundation/single-flight.ts";
import { Mutex } from "../oci-runtime/foundation/keyed-mutex.ts";
import { Semaphore } from "../oci-runtime/foundation/semaphore.ts";
import { ImageTrust, type TrustOutcome } from "./trust/trust.ts";
import { type Fetched, MAX_IMAGE_LAYERS, type Present, PullProcess, PullProcessUnavailable, type PullSettings, reapLeftover } from "./pull-process.ts";
import { monotonicMs } from "../oci-runtime/foundation/clock.ts";
import { Holds } from "./holds.ts";

export type { Image, ImageConfig, OciImageConfigFile } from "./images/image-store.ts";
export type { PullAuth } from "./registry/client.ts";
export type { TrustOutcome, TrustSummary } from "./trust/trust.ts";
export type { Fetched, Present } from "./pull-process.ts";

/** Holds keys against the GC for a pull (Holds.hold); resolves when the pull may use them. */
export type Hold = (...keys: string[]) => Promise<void>;
/** Stores a blob once `held` (its hold) resolves. */
type Store = (digest: string, body: Buffer, held: Promise<void>) => void;

/** Image trust (containers-policy.json); all "" turns verification off. */
export interface TrustConfig {
  policy: string;
  policyDir: string;
  registriesD: string;
  onOutcome?: (o: TrustOutcome) => void;
}

export interface PullOptions {
  /** The pod namespace the pull is for (selects <policyDir>/<namespace>.json). */
  namespace?: string;
}

export interface ImageServiceOptions extends PullSettings {
  log: Logger;
  /** Signature verification (off when absent). */
  trust?: TrustConfig;
  /**
   * Where pulls run: in a process of their own (pull-process.ts; berthd's setting) or in this
   * process (the default; the image-service tests, the pull bench's in-process runs). A pull
   * process that cannot start leaves the pull to this process.
   */
  pullIn?: "process" | "here";
  /** The pull process's module (tests); default pull-worker beside this file. */
  pullModule?: URL;
  /**
   * Large layers this process unpacks on its own thread at once, beside the unpack processes,
   * which are then as many fewer: the pull process's setting (pull-worker.ts), which saves one
   * process's start and memory per pull. `took` hears of every chunk a layer unpacked on this
   * thread takes in, large or small (the pull process's GC pacer). Default none: berthd's thread,
   * when it pulls itself, keeps what a layer's buffers grew its malloc arenas to (unpack-pool.ts).
   */
  unpackHere?: { layers: number; took: (bytes: number) => void };
}

export interface FsInfo { mountpoint: string; usedBytes: number; inodesUsed: number; timestamp: number }

const MAX_CONFIG = 8 << 20;
/**
 * Smallest layer unpacked in a worker process. A process costs about 50 ms of CPU to start;
 * berthd unpacks about 100 MB/s itself, so a layer under 8 MiB is done sooner there.
 */
export const DEFAULT_WORKER_MIN_LAYER_BYTES = 8 << 20;
const FS_INFO_TTL_MS = 10_000;
/** Pull processes that did not start in a row, after which berthd pulls every image itself. */
export const MAX_PULL_START_FAILURES = 3;

export class ImageService {
  readonly root: string;
  #log: Logger;
  #client: RegistryClient;
  #content: ContentStore;
  #snapshots: Snapshotter;
  #images: ImageStore;
  #leases: LeaseStore;
  #pulls = new SingleFlight<{ imageRef: string }>();
  #layers = new SingleFlight<void>();
  /**
   * Layers downloading (registry.max_concurrent_downloads): a layer's slot goes to the next one
   * once its last byte is in, while it still decompresses its last bytes, flushes and commits
   * (a flush took 40-60 ms, during which the next layer's download had waited).
   */
  #downloads: Semaphore;
  /** Layers downloading, unpacking or flushing: twice the downloads, so finished downloads do not pile up. */
  #unpacks: Semaphore;
  /** Store mutations and GC run one at a time. */
  #meta = new Mutex();
  /** Blobs and chain ids that pulls in flight (here or in the pull process) look for or write; GC leaves them alone. */
  #holds = new Holds();
  #fsInfo?: { at: number; value: FsInfo };
  /** Usage of committed (immutable) snapshots by chain id. */
  #layerUsage = new Map<string, { bytes: number; inodes: number }>();
  #trust: ImageTrust;
  #unpack: UnpackOptions;
  /** One syncfs helper for the layers of the pulls in flight. */
  #syncer: FsSyncer;
  /** Worker processes that unpack large layers; none: berthd unpacks every layer itself. */
  #unpackPool: UnpackPool | undefined;
  #workerMinBytes: number;
  /** Large layers this process may unpack on its own thread while the pool takes the rest. */
  #localLeft: number;
  /** Told of every chunk a layer unpacked on this thread takes in (unpackHere); none: not wrapped. */
  #tookHere: ((bytes: number) => void) | undefined;
  /** Pulls run there when set (options.pullIn "process"). */
  #pullProcess: PullProcess | undefined;
  /** Pulls in the pull process (partial layers are removed once none runs). */
  #pullsElsewhere = 0;
  /** The pull process died with pulls in flight: their partial layers and ingests are to be removed. */
  #partialLeft = false;
  /** Pull processes that did not start, in a row. */
  #pullStartFailures = 0;

  constructor(opts: ImageServiceOptions) {
    this.root = path.resolve(opts.root);
    this.#log = opts.log.child({ component: "image-service" });
    this.#client = new RegistryClient({
      hostsDir: opts.hostsDir, ...(opts.authFile ? { authFile: opts.authFile } : {}), stallTimeoutMs: opts.stallTimeoutMs, log: this.#log,
      ...(opts.retry?.attempts ? { attempts: opts.retry.attempts } : {}), ...(opts.retry?.backoffMs !== undefined ? { backoffMs: opts.retry.backoffMs } : {}),
    });
    this.#content = new ContentStore(path.join(this.root, "content"));
    this.#snapshots = new Snapshotter(path.join(this.root, "snapshots"), opts.layerHelper ?? DEFAULT_LAYER_HELPER);
    this.#images = new ImageStore(path.join(this.root, "images"));
    this.#leases = new LeaseStore(path.join(this.root, "leases"));
    this.#downloads = new Semaphore(Math.max(1, opts.maxConcurrentDownloads));
    this.#unpacks = new Semaphore(2 * Math.max(1, opts.maxConcurrentDownloads));
    this.#trust = new ImageTrust({
      policy: opts.trust?.policy ?? "", policyDir: opts.trust?.policyDir ?? "", registriesD: opts.trust?.registriesD ?? "",
      hostsDir: opts.hostsDir, timeoutMs: opts.stallTimeoutMs, log: this.#log.child({ component: "image-trust" }),
      ...(opts.trust?.onOutcome ? { onOutcome: opts.trust.onOutcome } : {}),
    }, this.#client);
    this.#syncer = new FsSyncer(opts.layerHelper ?? DEFAULT_LAYER_HELPER, path.join(this.root, "snapshots"));
    this.#unpack = {
      ...(opts.layerHelper ? { helper: opts.layerHelper } : {}), ...(opts.layerLimits ? { limits: opts.layerLimits } : {}),
    };
    this.#workerMinBytes = opts.unpackOnWorkersFrom ?? DEFAULT_WORKER_MIN_LAYER_BYTES;
    this.#localLeft = opts.unpackHere?.layers ?? 0;
    this.#tookHere = opts.unpackHere?.took;
    const procs = Math.min(Math.max(1, opts.maxConcurrentDownloads), availableParallelism()) - this.#localLeft;
    if (availableParallelism() > 1 && this.#workerMinBytes !== Infinity && procs > 0) {
      // One process per layer in flight, up to the CPUs; beyond that a process takes several
      // layers at once. The processes download their layers themselves, so berthd has little
      // left to do: on 2 CPUs the bench's 4-layer image took 0.79-0.97 s (median 0.84) and
      // 1.09-1.38 s of CPU with 2 processes, 0.83-0.96 s (median 0.90) and 1.21-1.39 s with 3
      // (13 cold pulls each, mostly alternating). When berthd relayed every byte, 3 were faster.
      // The pull process unpacks some of those layers itself (unpackHere) and starts as many
      // processes fewer. One: the bench's pull peaked at 220-228 MB RSS and 116-124 MB PSS
      // (berthd with its children) against 294-296 and 146-149 MB, in 1.06-1.32 s against
      // 1.00-1.18 s (berth alone, two alternating pairs of 5 cold pulls, on a machine whose
      // plain pipeline moved between 1.13 and 1.54 s across the four). Two, none on two CPUs:
      // PULL_PROCESS_UNPACKS (pull-process.ts).
      this.#unpackPool = new UnpackPool({ maxWorkers: procs });
    }
    if (opts.pullIn === "process") {
      const { log: _log, pullIn: _in, pullModule, trust, unpackHere: _here, ...rest } = opts;
      this.#pullProcess = new PullProcess({
        config: {
          ...rest, logLevel: (["debug", "info", "warn", "error"] as const).find((l) => opts.log.enabled(l)) ?? "error",
          ...(trust ? { trust: { policy: trust.policy, policyDir: trust.policyDir, registriesD: trust.registriesD } } : {}),
        },
        log: this.#log, ...(trust?.onOutcome ? { onTrust: trust.onOutcome } : {}), ...(pullModule ? { module: pullModule } : {}),
        onLost: () => { this.#partialLeft = true; },
      });
    }
  }

  /** The pull process's pid while it runs (tests). */
  get pullProcessPid(): number | undefined { return this.#pullProcess?.pid; }

  /** Ends the unpack processes (they also end on their own when idle); pulls in flight fail. */
  async close(): Promise<void> { await Promise.all([this.#unpackPool?.close(), this.#pullProcess?.close()]); }

  /** Creates the layout, loads images and leases, cleans partial ingests and unpacks. */
  async init(): Promise<void> {
    await this.#trust.validate();
    await mkdir(this.root, { recursive: true, mode: 0o700 });
    // A pull process an earlier berthd left running (stuck when that berthd was killed) goes
    // before partial layers and ingests are cleaned up: nothing of it writes here afterwards.
    await reapLeftover(this.root, this.#log);
    await this.#content.init();
    await this.#snapshots.init();
    if (this.#snapshots.topDirsUnset) this.#log.info("layer directories are not ext4 top directories (chattr +T)", { dir: this.#snapshots.root, error: this.#snapshots.topDirsUnset });
    await this.#images.init();
    await this.#leases.init();
  }

  // ---- pull ---------------------------------------------------------------------------------

  /** Pulls an image; returns its id (the config digest) as imageRef. */
  async pull(ref: string, auth?: PullAuth, opts: PullOptions = {}): Promise<{ imageRef: string }> {
    const r = parseReference(ref);
    const ns = opts.namespace ?? "";
    const key = `${formatReference(r)}|${ns}|${sha256HexText(credentialKey(auth))}`;
    return this.#pulls.do(key, () => this.#pullProcess ? this.#pullElsewhere(r, auth, ns || undefined) : this.#pull(r, auth, ns || undefined));
  }

  /** A pull in the pull process; berthd records what it answers. */
  async #pullElsewhere(r: Reference, auth: PullAuth | undefined, namespace: string | undefined): Promise<{ imageRef: string }> {
    const pullProcess = this.#pullProcess;
    if (!pullProcess) return this.#pull(r, auth, namespace); // given up on since this pull was dispatched
    const have = this.#present(r);
    // Counted under the store lock: a removal of partial layers already running (below) ends
    // first, and none starts while this pull runs.
    await this.#meta.run(async () => { this.#pullsElsewhere++; });
    // What the process holds, as it says it is about to look for or write them (its own Holds
    // are not berthd's GC's): released when the pull ends here, whatever the process does.
    const held: string[] = [];
    let ok = false;
    try {
      const hold = (keys: string[]) => { held.push(...keys); return this.#holds.hold(keys); };
      const got = await pullProcess.pull({ ref: formatReference(r), ...(auth ? { auth } : {}), ...(namespace ? { namespace } : {}), ...(have ? { have } : {}) }, hold);
      this.#pullStartFailures = 0;
      if (got.kind === "fetched") await this.#meta.run(() => this.#record(r, got.topDigest, got.image));
      ok = true;
      return { imageRef: got.kind === "present" ? got.id : got.image.id };
    } catch (err) {
      if (!(err instanceof PullProcessUnavailable)) {
        this.#pullStartFailures = 0; // it started: the pull itself failed
        throw err;
      }
      ok = true; // nothing was written
      if (++this.#pullStartFailures >= MAX_PULL_START_FAILURES && this.#pullProcess === pullProcess) {
        this.#log.warn("the pull process did not start, again: berthd pulls every image itself from now on", { error: err, failures: this.#pullStartFailures });
        this.#pullProcess = undefined;
        void pullProcess.close();
      } else {
        this.#log.warn("the pull process did not start: berthd pulls this image itself", { error: err });
      }
      return await this.#pull(r, auth, namespace);
    } finally {
      this.#holds.release(held);
      this.#pullsElsewhere--;
      // A pull process that died left its partial layers and ingests: removed once no pull writes
      // (none in a process, none in berthd itself).
      if (this.#pullsElsewhere === 0 && this.#partialLeft && this.#holds.size === 0) {
        await this.#meta.run(async () => {
          // Looked at again under the lock: a pull counted meanwhile may be writing already; the
          // next pull to end cleans up then.
          if (this.#pullsElsewhere !== 0 || this.#holds.size !== 0 || !this.#partialLeft) return;
          this.#partialLeft = false;
          await this.#snapshots.removePartial();
          await this.#content.removePartial();
        }).catch((err) => this.#log.warn("removing what a dead pull process left", { error: err }));
      }
      // What a failed pull wrote (blobs and layers no image names) goes now.
      if (!ok) await this.#gc().catch((err) => this.#log.warn("gc after failed pull", { error: err }));
    }
  }

  /** An image with this digest that is here already, for the pull to look at first. */
  #present(r: Reference): Present | undefined {
    if (!r.digest) return undefined;
    const have = this.get(formatReference({ ...r, tag: undefined }));
    return have ? { id: have.id, chainIds: have.chainIds } : undefined;
  }

  /** A pull in berthd itself: fetched and unpacked here, then recorded. */
  async #pull(r: Reference, auth: PullAuth | undefined, namespace: string | undefined): Promise<{ imageRef: string }> {
    const held: string[] = [];
    let ok = false;
    try {
      const got = await this.fetchImage(r, auth, namespace, this.#present(r), (...k) => { held.push(...k); return this.#holds.hold(k); });
      if (got.kind === "fetched") await this.#meta.run(() => this.#record(r, got.topDigest, got.image));
      ok = true;
      return { imageRef: got.kind === "present" ? got.id : got.image.id };
    } finally {
      this.#holds.release(held);
      if (!ok) await this.#gc().catch((err) => this.#log.warn("gc after failed pull", { error: err }));
    }
  }

  /**
   * Resolves, checks and fetches an image: its manifests and config stored, its layers unpacked
   * and committed, and its record returned, not stored (the caller records it). `hold` names the
   * blobs and chain ids against the GC (Holds); nothing looks for them or writes them before it
   * resolves. "present": `have`, the image with the digest asked for, has every layer here and
   * the current policy accepts it.
   */
  async fetchImage(r: Reference, auth: PullAuth | undefined, namespace: string | undefined, have: Present | undefined, hold: Hold): Promise<Fetched> {
    const started = Date.now();
    const name = formatReference(r);
    // Manifests and the config are stored (fsync, rename, fsync of the directory) while the
    // layers download; they are all durable before the image is recorded.
    const stores: Promise<void>[] = [];
    const store: Store = (digest, body, held) => { const p = held.then(() => this.#content.put(digest, body)); p.catch(() => {}); stores.push(p); };
    this.#syncer.acquire();
    try {
      // A digest names immutable content: if it is here (layers included), there is nothing to fetch.
      if (have && await hold(...have.chainIds).then(() => Promise.all(have.chainIds.map((c) => this.#snapshots.has(c)))).then((p) => p.every(Boolean))) {
        await this.#trust.check(r, r.digest!, namespace, auth); // present, but the current policy decides
        return { kind: "present", id: have.id };
      }
      const top = await this.#client.resolve(r, auth);
      // Signatures cover the top-level manifest; nothing of the image is stored before they are checked.
      await this.#trust.check(r, top.digest, namespace, auth);
      store(top.digest, top.body, hold(top.digest));
      const blobs = [top.digest];
      let manifest = top;
      let parsed = parseManifest(top.body, top.mediaType, name);
      for (let depth = 0; parsed.kind === "index"; depth++) {
        if (depth > 2) throw unavailable(`image index ${name} nests too deeply`);
        const desc = selectPlatform(parsed.doc, hostPlatform(), name);
        manifest = await this.#manifestByDigest(r, desc, store, hold, auth);
        blobs.push(manifest.digest);
        parsed = parseManifest(manifest.body, desc.mediaType, `${repoName(r)}@${desc.digest}`);
      }
      const doc: ManifestDoc = parsed.doc;
      const configFile = await this.#config(r, doc.config, store, hold, auth);
      blobs.push(doc.config.digest);
      const diffIds = configFile.rootfs?.diff_ids ?? [];
      if (diffIds.length !== doc.layers.length) {
        throw unavailable(`image ${name}: manifest has ${doc.layers.length} layers but its config lists ${diffIds.length} diff ids`);
      }
      if (doc.layers.length > MAX_IMAGE_LAYERS) {
        throw unavailable(`image ${name} has ${doc.layers.length} layers: overlayfs stacks at most ${MAX_IMAGE_LAYERS}`);
      }
      for (const l of doc.layers) layerCompression(l.mediaType, l.digest); // refuse unknown types before downloading
      const chains = chainIds(diffIds);
      await hold(...chains, ...doc.layers.map((l) => l.digest));
      const layers: ImageLayer[] = doc.layers.map((l, i) => ({ digest: l.digest, size: l.size, mediaType: l.mediaType, diffId: diffIds[i]!, chainId: chains[i]! }));
      // Wait for every layer even when one fails, so nothing is still writing when GC runs.
      // The missing layers take their download slots largest first (by compressed size): the
      // largest is not the one left to run alone at the end (in alternating cold pulls of the
      // bench image, 652 against 667 ms, lower in 7 of 8 pairs).
      const present = await Promise.all(layers.map((l) => this.#snapshots.has(l.chainId)));
      const order = layers.filter((_, i) => !present[i]).sort((a, b) => b.size - a.size);
      const results = await Promise.allSettled(order.map((l) => this.#layers.do(l.chainId, () => this.#ensureLayer(r, l, auth))));
      const failed = results.find((x) => x.status === "rejected");
      if (failed) throw failed.reason;
      blobs.push(...layers.map((l) => l.digest));
      for (const st of await Promise.allSettled(stores)) if (st.status === "rejected") throw st.reason;
      const size = manifest.size + doc.config.size + doc.layers.reduce((a, l) => a + l.size, 0);
      const id = doc.config.digest;
      this.#log.info("image pulled", { image: name, id, layers: layers.length, seconds: (Date.now() - started) / 1000 });
      return {
        kind: "fetched", topDigest: top.digest,
        image: {
          id, repoTags: [], repoDigests: [], size, ...parseImageUser(configFile.config?.User), pinned: false,
          config: configFile.config ?? {}, configFile, manifestDigest: manifest.digest, manifestMediaType: parsed.mediaType,
          layers, blobs: [...new Set(blobs)], chainIds: chains, pulledAt: new Date().toISOString(),
        },
      };
    } finally {
      await Promise.allSettled(stores); // nothing is still writing when GC runs
      await this.#syncer.release();
    }
  }

  async #manifestByDigest(r: Reference, desc: Descriptor, store: Store, hold: Hold, auth?: PullAuth): Promise<ManifestResult> {
    const held = hold(desc.digest);
    await held;
    if (await this.#content.has(desc.digest, desc.size)) {
      const body = await this.#content.read(desc.digest);
      return { digest: desc.digest, mediaType: desc.mediaType, size: body.length, body };
    }
    const m = await this.#client.fetchManifest(r, desc, auth);
    store(m.digest, m.body, m.digest === desc.digest ? held : hold(m.digest));
    return m;
  }

  async #config(r: Reference, desc: Descriptor, store: Store, hold: Hold, auth?: PullAuth): Promise<OciImageConfigFile> {
    if (desc.size > MAX_CONFIG) throw unavailable(`image config ${desc.digest} of ${repoName(r)} is too large (${desc.size} bytes)`);
    const held = hold(desc.digest);
    await held;
    let body: Buffer;
    if (await this.#content.has(desc.digest, desc.size)) body = await this.#content.read(desc.digest);
    else {
      body = await this.#client.fetchSmallBlob(r, desc, auth);
      store(desc.digest, body, held);
    }
    try {
      const doc = JSON.parse(body.toString("utf8")) as OciImageConfigFile;
      if (typeof doc !== "object" || doc === null || typeof doc.rootfs !== "object") throw new Error("no rootfs");
      return doc;
    } catch (err) {
      throw unavailable(`image config ${desc.digest} of ${repoName(r)} is malformed`, err);
    }
  }

  /**
   * Makes sure the layer's snapshot exists, downloading and unpacking it in one pass if not.
   * The compressed bytes are hashed as they stream through and checked against the layer's
   * digest (and size) before the snapshot is committed; they are not kept in the content store
   * (the snapshot is the layer, as in containers/storage), so a pull writes each layer once.
   */
  async #ensureLayer(r: Reference, l: ImageLayer, auth?: PullAuth): Promise<void> {
    const compression = layerCompression(l.mediaType, l.digest);
    // The slots are taken at the call, in the caller's order; another pull may have committed
    // the layer meanwhile, which is looked at once a slot is held.
    await this.#unpacks.run(() => this.#downloads.run(async (downloaded) => {
      if (await this.#snapshots.has(l.chainId)) return;
      const started = monotonicMs();
      // A blob kept by an earlier berth (which stored layer blobs) is unpacked from disk.
      const have = await this.#content.has(l.digest, l.size);
      const { tmp, fs } = await this.#snapshots.prepare();
      try {
        const desc = { digest: l.digest, size: l.size, mediaType: l.mediaType };
        const src: AsyncIterable<Buffer> = have ? this.#content.stream(l.digest) : this.#client.blobStream(r, desc, auth);
        // Digest, size and diff id are checked before the layer is flushed and committed.
        const opts = { ...this.#unpack, sync: () => this.#syncer.sync(), onInputEnd: downloaded, beforeSync: (diffId: string, raw: RawInput) => {
          if (raw.bytes !== l.size) throw unavailable(`blob ${l.digest} of ${repoName(r)} has ${raw.bytes} bytes, expected ${l.size}`);
          if (raw.digest !== l.digest) throw unavailable(`blob ${l.digest} failed verification: the content ${repoName(r)} sent has digest ${raw.digest}`);
          if (diffId !== l.diffId) throw unavailable(`layer ${l.digest} of ${repoName(r)} unpacks to ${diffId}, the config says ${l.diffId}`);
        } };
        // An unpack process downloads the layer itself; berthd's client takes over if it stops
        // short, or from the start when it cannot describe the download (the first host's token
        // endpoint refuses, say: blobStream then passes over that host, as for any other failure).
        const onWorker = () => have ? src : this.#client.directBlob(r, desc, auth).then((blob): DirectDownload => ({
          blob,
          rest: (offset: number, why: string) => {
            this.#log.info("layer download handed back to berthd", { digest: l.digest, offset, error: why });
            return this.#client.blobStream(r, desc, auth, offset, true);
          },
        }), (err: unknown) => {
          this.#log.info("layer download stays with berthd", { digest: l.digest, error: (err as Error).message ?? String(err) });
          return src;
        });
        // A large layer goes to this process's own slot while it is free (unpackHere), else to
        // an unpack process; a small one, or one no process could take, is unpacked here too.
        const took = this.#tookHere;
        const here = () => unpackLayer(took ? paced(src, took) : src, compression, fs, opts);
        const large = l.size >= this.#workerMinBytes;
        let res: UnpackResult | undefined;
        let where = "here";
        if (large && this.#localLeft > 0) {
          this.#localLeft--;
          try { res = await here(); } finally { this.#localLeft++; }
        } else if (large) {
          res = await this.#unpackOnWorker(onWorker, compression, fs, opts);
          if (res) where = "unpack process";
        }
        res ??= await here();
        await this.#snapshots.commit(tmp, l.chainId);
        this.#log.debug("layer unpacked", {
          digest: l.digest, chainId: l.chainId, entries: res.entries, bytes: res.bytes, downloaded: !have, where,
          ms: Math.round(monotonicMs() - started), syncMs: Math.round(res.syncMs),
        });
      } catch (err) {
        await this.#snapshots.discard(tmp);
        if (err instanceof BreakoutError || err instanceof TarError) {
          throw failedPrecondition(`layer ${l.digest} of ${repoName(r)} is unsafe or malformed: ${err.message}`, err);
        }
        if (err instanceof BerthError) throw err;
        const msg = (err as Error).message ?? String(err);
        throw unavailable(`layer ${l.digest} of ${repoName(r)}: ${msg}`, err);
      }
    }));
  }

  /**
   * unpackLayer in a worker process; undefined (nothing of `src` read) when none could start
   * (after MAX_START_FAILURES in a row, never again).
   */
  async #unpackOnWorker(input: () => AsyncIterable<Buffer> | Promise<AsyncIterable<Buffer> | DirectDownload>, compression: Compression, dir: string, opts: UnpackOptions & { sync: () => Promise<void> }): Promise<UnpackResult | undefined> {
    const pool = this.#unpackPool;
    if (!pool) return undefined;
    try {
      return await pool.unpack(await input(), compression, dir, opts);
    } catch (err) {
      if (!(err instanceof UnpackWorkersUnavailable)) throw err;
      if (!err.permanent) {
        this.#log.warn("an unpack process did not start: berthd unpacks this layer itself", { error: err });
        return undefined;
      }
      this.#unpackPool = undefined;
      this.#log.warn("berthd unpacks every layer itself from now on", { error: err });
      void pool.close();
      return undefined;
    }
  }

  /** Adds the image (or merges its names into the existing record) and moves the tag to it. */
  async #record(r: Reference, topDigest: string, fresh: Image) {
    const tag = repoTag(r);
    const dig = repoDigest(r, topDigest);
    for (const other of this.#images.list()) {
      if (other.id !== fresh.id && tag && other.repoTags.includes(tag)) {
        await this.#images.put({ ...other, repoTags: other.repoTags.filter((t) => t !== tag) });
      }
    }
    const cur = this.#images.get(fresh.id);
    const img: Image = cur
      ? { ...cur, repoTags: [...cur.repoTags], repoDigests: [...cur.repoDigests], blobs: [...new Set([...cur.blobs, ...fresh.blobs])] }
      : fresh;
    if (tag && !img.repoTags.includes(tag)) img.repoTags.push(tag);
    if (!img.repoDigests.includes(dig)) img.repoDigests.push(dig);
    await this.#images.put(img);
  }

  // ---- queries ------------------------------------------------------------------------------

  /** Finds an image by id ("sha256:<hex>", "<hex>", a unique hex prefix), tag or digest reference. */
  get(refOrId: string): Image | undefined {
    if (!refOrId) return undefined;
    if (isDigest(refOrId)) {
      const byId = this.#images.get(refOrId);
      if (byId) return byId;
    }
    if (/^[a-f0-9]{64}$/.test(refOrId)) {
      const byId = this.#images.get(`sha256:${refOrId}`);
      if (byId) return byId;
    }
    let r: Reference | undefined;
    try { r = parseReference(refOrId); } catch { r = undefined; }
    if (r) {
      const found = this.#images.list().find((img) => r.digest
        ? img.repoDigests.includes(repoDigest(r, r.digest)) || (img.manifestDigest === r.digest && img.repoDigests.some((d) => d.startsWith(repoName(r) + "@")))
        : img.repoTags.includes(repoTag(r)!));
      if (found) return found;
    }
    const prefix = refOrId.replace(/^sha256:/, "");
    if (/^[a-f0-9]{6,63}$/.test(prefix)) {
      const matches = this.#images.list().filter((img) => img.id.slice(7).startsWith(prefix));
      if (matches.length === 1) return matches[0];
    }
    return undefined;
  }

  /** All images, or the one matching `filterRef`. */
  list(filterRef?: string): Image[] {
    if (filterRef) {
      const img = this.get(filterRef);
      return img ? [img] : [];
    }
    return this.#images.list();
  }

  /** Sets or clears the pinned flag (for example on the pause image). */
  async setPinned(refOrId: string, pinned: boolean): Promise<void> {
    await this.#meta.run(async () => {
      const img = this.get(refOrId);
      if (!img) throw notFound(`image ${JSON.stringify(refOrId)} not found`);
      await this.#images.put({ ...img, pinned });
    });
  }

  /**
   * Removes an image by id, tag or digest. Removing one tag of an image with several only
   * untags it. Unknown images succeed (CRI: RemoveImage is idempotent).
   */
  async remove(refOrId: string): Promise<void> {
    const removed = await this.#meta.run(async () => {
      const img = this.get(refOrId);
      if (!img) return false;
      let tag: string | undefined;
      try {
        const r = parseReference(refOrId);
        tag = repoTag(r);
        if (tag && !img.repoTags.includes(tag)) tag = undefined;
      } catch { tag = undefined; }
      if (tag && img.repoTags.length > 1) {
        await this.#images.put({ ...img, repoTags: img.repoTags.filter((t) => t !== tag) });
        this.#log.info("image untagged", { id: img.id, tag });
        return false;
      }
      const users = this.volumeUsers(img.id);
      if (users.length) {
        throw failedPrecondition(`image ${JSON.stringify(refOrId)} (${img.id}) is in use as an image volume by container ${[...new Set(users)].join(", ")}`);
      }
      await this.#images.delete(img.id);
      this.#log.info("image removed", { id: img.id, tags: img.repoTags });
      return true;
    });
    if (removed) await this.#gc();
  }

  /** Deletes content and snapshots that no image, lease or in-flight pull references. */
  async #gc(): Promise<void> {
    await this.#meta.run(async () => {
      // Records and leases cannot change meanwhile (the lock); what pulls hold is looked at again
      // for each key, as a pull here or in the pull process may take a hold at any time.
      const keep = new Set<string>();
      for (const img of this.#images.list()) for (const k of [...img.blobs, ...img.chainIds]) keep.add(k);
      for (const l of this.#leases.list()) for (const c of l.chainIds) keep.add(c);
      let blobs = 0;
      let snaps = 0;
      for (const d of await this.#content.list()) if (!keep.has(d) && await this.#holds.removeUnheld(d, () => this.#content.delete(d))) blobs++;
      for (const c of await this.#snapshots.list()) if (!keep.has(c) && await this.#holds.removeUnheld(c, () => this.#snapshots.remove(c))) snaps++;
      if (blobs || snaps) this.#log.info("garbage collected", { blobs, snapshots: snaps });
      this.#fsInfo = undefined;
    });
  }

  /**
   * Usage of the image filesystem: content, layer snapshots and container layers. Committed
   * snapshots never change, so each is measured once; only container layers are walked again.
   */
  async fsInfo(): Promise<FsInfo> {
    const now = Date.now();
    if (this.#fsInfo && now - this.#fsInfo.at < FS_INFO_TTL_MS) return this.#fsInfo.value;
    let bytes = 0;
    let inodes = 0;
    const add = (u: { bytes: number; inodes: number }) => { bytes += u.bytes; inodes += u.inodes; };
    add(await diskUsage(path.join(this.root, "content")));
    const chains = new Set(await this.#snapshots.list());
    for (const c of this.#layerUsage.keys()) if (!chains.has(c)) this.#layerUsage.delete(c);
    for (const c of chains) {
      let u = this.#layerUsage.get(c);
      if (!u) { u = await diskUsage(path.dirname(this.#snapshots.dir(c))); this.#layerUsage.set(c, u); }
      add(u);
    }
    add(await diskUsage(path.join(this.root, "snapshots", "containers")));
    const value: FsInfo = { mountpoint: this.root, usedBytes: bytes, inodesUsed: inodes, timestamp: now };
    this.#fsInfo = { at: now, value };
    return value;
  }

  // ---- container rootfs ---------------------------------------------------------------------

  #imageOrThrow(imageId: string): Image {
    const img = this.get(imageId);
    if (!img) throw notFound(`image ${JSON.stringify(imageId)} not found`);
    return img;
  }

  /** Prepares upper/work for `key`, records the lease and mounts the overlay at `target`. */
  async createRootfs(key: string, imageId: string, target: string): Promise<void> {
    const img = this.#imageOrThrow(imageId);
    if (this.#leases.get(key)) throw failedPrecondition(`rootfs ${key} already exists`);
    if (await isOtherFilesystem(target)) throw failedPrecondition(`rootfs target ${target} is already a mount point`);
    await this.#meta.run(() => this.#leases.put({ key, imageId: img.id, chainIds: img.chainIds }));
    try {
      for (const c of img.chainIds) if (!(await this.#snapshots.has(c))) throw internal(`layer ${c} of image ${img.id} is missing from the snapshot store`);
      await this.#snapshots.prepareContainer(key);
      await this.#snapshots.mount(key, img.chainIds, target);
    } catch (err) {
      await this.#snapshots.removeContainer(key).catch(() => {});
      await this.#meta.run(() => this.#leases.delete(key));
      throw err;
    }
  }

  /** Re-mounts an existing container rootfs (after a reboot); a no-op when already mounted. */
  async mountRootfs(key: string, imageId: string, target: string): Promise<void> {
    if (await isMountPoint(target)) return;
    let lease = this.#leases.get(key);
    if (!lease) {
      const img = this.#imageOrThrow(imageId);
      lease = { key, imageId: img.id, chainIds: img.chainIds };
      const l = lease;
      await this.#meta.run(() => this.#leases.put(l));
    }
    await this.#snapshots.prepareContainer(key);
    await this.#snapshots.mount(key, lease.chainIds, target);
  }

  /** Unmounts (if mounted), deletes upper/work and drops the lease; unknown keys succeed. */
  async removeRootfs(key: string, target?: string): Promise<void> {
    if (target && (await isMountPoint(target))) await this.#snapshots.unmount(target);
    await this.#snapshots.removeContainer(key);
    const had = !!this.#leases.get(key);
    await this.#meta.run(() => this.#leases.delete(key));
    if (had) await this.#gc();
  }

  /** Bytes and inodes in a container's writable layer. */
  async rootfsUsage(key: string): Promise<{ bytes: number; inodes: number }> {
    return diskUsage(this.#snapshots.upperDir(key));
  }

  /** The writable (upper) directory of a container rootfs. */
  upperDir(key: string): string { return this.#snapshots.upperDir(key); }

  // ---- image volumes (KEP-4639) -------------------------------------------------------------

  /**
   * Mounts image `imageRef`'s layers read-only at `target` (image-service/volumes), under the
   * lease volume-<owner>-<index>: RemoveImage refuses the image and GC keeps its layers while
   * the lease exists. NOT_FOUND names an image that is not pulled.
   */
  async mountImageVolume(owner: string, index: number, imageRef: string, target: string, idmap?: IdmapLayers): Promise<Image> {
    const img = this.get(imageRef);
    if (!img) throw notFound(`image ${JSON.stringify(imageRef)} for an image volume not found (pull it first)`);
    const key = volumeLeaseKey(owner, index);
    if (this.#leases.get(key)) throw failedPrecondition(`image volume ${key} already exists`);
    await this.#meta.run(() => this.#leases.put({ key, imageId: img.id, chainIds: img.chainIds }));
    try {
      for (const c of img.chainIds) if (!(await this.#snapshots.has(c))) throw internal(`layer ${c} of image ${img.id} is missing from the snapshot store`);
      await mountLayersReadOnly(this.#snapshots.root, img.chainIds, target, idmap);
    } catch (err) {
      await this.#meta.run(() => this.#leases.delete(key));
      throw err;
    }
    return img;
  }

  /** Unmounts `owner`'s image volumes (mounted at `<dir>/<index>` in any of `dirs`) and drops their leases; none is fine. */
  async removeImageVolumes(owner: string, dirs: string[]): Promise<void> {
    const prefix = volumeLeasePrefix(owner);
    const leases = this.#leases.list().filter((l) => l.key.startsWith(prefix));
    for (const l of leases) {
      for (const dir of dirs) await unmountVolume(path.join(dir, l.key.slice(prefix.length)));
      await this.#meta.run(() => this.#leases.delete(l.key));
    }
    if (leases.length) await this.#gc();
  }

  /** Owners (container ids) using an image as a volume. */
  volumeUsers(imageId: string): string[] {
    return this.#leases.list().filter((l) => l.imageId === imageId && l.key.startsWith("volume-"))
      .map((l) => l.key.slice("volume-".length).replace(/-\d+$/, ""));
  }
}

/** The chunks of `src`, each told to `took` as it passes. */
async function* paced(src: AsyncIterable<Buffer>, took: (bytes: number) => void): AsyncIterable<Buffer> {
  for await (const c of src) { took(c.length); yield c; }
}
