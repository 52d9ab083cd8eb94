// The unpack process of unpack-pool.ts (node, forked by berthd): runs unpackLayer (decompress,
// hash, tar, file creation) for the layers berthd hands it. A layer's bytes come from its own
// download (the start frame's `fetch`), then, if that stopped short, from berthd. Input comes
// framed on stdin (start, data, end or abort of each layer, in order; an abort stops a layer at
// once: its berth-layer helper is killed, so no wait for it remains); "synced", the answer to a
// flush, comes over the IPC channel. It exits when berthd closes the channel or stdin, and its
// helpers die with it (PR_SET_PDEATHSIG). Frames are checked for their shape; berthd is the only
// sender.
import { LayerLimitError, TarError } from "./tar-reader.ts";
import { BreakoutError } from "./safe-path.ts";
import { unpackLayer, type RawInput } from "./unpack.ts";
import { openDirectBlob } from "../registry/http.ts";
import { unpackPacer } from "./gc-pacer.ts";
import { FETCH_AHEAD, FRAME_ABORT, FRAME_DATA, HEARTBEAT_MS, FRAME_END, FRAME_HEADER, FRAME_START, MAX_ABORT_REASON, MAX_START_FRAME, type FromWorker, type StartJob, type ToWorker, type WorkerError } from "./unpack-frames.ts";

/** Collections paced by what the process takes in (gc-pacer.ts; it has --expose-gc, unpack-pool.ts). */
const pacer = unpackPacer();

if (!process.send) throw new Error("unpack-worker runs only as a process forked with an IPC channel");

/**
 * Input chunks of one layer, in order; a waiting reader, or the end or failure. A chunk berthd
 * sent is acknowledged when read; the bytes of the process's own download are counted instead
 * (`fetched`), and that download waits while more than FETCH_AHEAD of them are unread.
 */
class Inbox {
  #chunks: { c: Buffer; own: boolean }[] = [];
  #end = false;
  #failure: Error | undefined;
  #wake: (() => void) | undefined;
  #fetched = 0;
  #room: (() => void) | undefined;
  push(c: Buffer, own = false) { this.#chunks.push({ c, own }); if (own) this.#fetched += c.length; pacer.took(c.length); this.#poke(); }
  end() { this.#end = true; this.#poke(); }
  fail(err: Error) { this.#failure ??= err; this.#poke(); this.#letIn(); }
  /** Waits while more than FETCH_AHEAD of the process's own bytes are unread, until half of them are read; throws once the layer failed. */
  async room(): Promise<void> {
    while (this.#fetched > FETCH_AHEAD && !this.#failure) await new Promise<void>((r) => { this.#room = r; });
    if (this.#failure) throw this.#failure;
  }
  #poke() { const w = this.#wake; this.#wake = undefined; w?.(); }
  #letIn() { const r = this.#room; this.#room = undefined; r?.(); }
  async *read(ack: (bytes: number) => void): AsyncGenerator<Buffer> {
    for (;;) {
      if (this.#failure) throw this.#failure;
      const next = this.#chunks.shift();
      if (next) {
        if (!next.own) ack(next.c.length);
        else if ((this.#fetched -= next.c.length) <= FETCH_AHEAD / 2) this.#letIn();
        yield next.c;
        continue;
      }
      if (this.#end) return;
      await new Promise<void>((r) => { this.#wake = r; });
    }
  }
}

/**
 * The layer's own download (StartJob.fetch): its bytes go to the inbox, at most the blob's size.
 * Complete, it ends the input; else berthd sends the rest. Either way berthd hears how far it got.
 */
async function download(start: StartJob, job: Job) {
  const d = start.fetch!;
  let bytes = 0;
  let error: string | undefined;
  try {
    const res = await openDirectBlob(d, AbortSignal.any([job.stop.signal, job.downloadEnd.signal]));
    try {
      for await (const c of res as AsyncIterable<Buffer>) {
        if (bytes + c.length > d.size) throw new Error(`registry sent more than the ${d.size} bytes of blob ${d.digest}`);
        bytes += c.length;
        job.inbox.push(c, true);
        await job.inbox.room();
      }
      if (bytes !== d.size) throw new Error(`connection closed after ${bytes} of ${d.size} bytes`);
    } finally {
      res.destroy();
    }
  } catch (err) {
    error = (err as Error).message ?? String(err);
  }
  job.fetching = false;
  if (error === undefined) job.inbox.end();
  // A layer that ended or was aborted wants no rest from berthd.
  if (jobs.get(start.id) === job && !job.stop.signal.aborted) post({ t: "fetched", id: start.id, bytes, ...(error !== undefined ? { error: error.slice(0, MAX_ABORT_REASON) } : {}) });
}

function describe(err: unknown): WorkerError {
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof LayerLimitError) return { kind: "limit", message, limit: err.limit };
  if (err instanceof TarError) return { kind: "tar", message };
  if (err instanceof BreakoutError) return { kind: "breakout", message, entry: err.entry };
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return { kind: "other", message, ...(typeof code === "string" ? { code } : {}) };
}

interface Job {
  inbox: Inbox;
  stop: AbortController;
  synced?: (err?: string) => void;
  /** Its own download is running: berthd sends no data yet. */
  fetching?: boolean;
  /** Ends its own download, and the socket with it, when the layer ends first (a hostile layer). */
  downloadEnd: AbortController;
}
/** Layers in flight in this process, by id: it unpacks several at once. */
const jobs = new Map<number, Job>();
const post = (m: FromWorker) => { process.send!(m); };

async function run(start: StartJob, job: Job) {
  let checked: { diffId: string; raw: RawInput } | undefined;
  try {
    const res = await unpackLayer(job.inbox.read((bytes) => post({ t: "ack", id: start.id, bytes })), start.compression, start.dir, {
      ...(start.helper ? { helper: start.helper } : {}),
      ...(start.limits ? { limits: start.limits } : {}),
      signal: job.stop.signal,
      beforeSync: (diffId, raw) => { checked = { diffId, raw }; },
      // The flush is berthd's (one syncfs shared by the layers in flight), and so is the check
      // of the digests, which comes first: a refused layer is never flushed.
      sync: async () => {
        if (!checked) throw new Error("layer flushed before its digests were known");
        const { diffId, raw } = checked;
        const err = await new Promise<string | undefined>((resolve) => { job.synced = resolve; post({ t: "sync", id: start.id, diffId, raw }); });
        if (err !== undefined) throw new Error(err);
      },
    });
    post({ t: "done", id: start.id, result: res });
  } catch (err) {
    post({ t: "failed", id: start.id, error: describe(err) });
  } finally {
    jobs.delete(start.id);
    job.inbox.fail(new Error("layer unpack ended")); // releases a read still waiting for input
    job.downloadEnd.abort(new Error("layer unpack ended"));
  }
}

function protocolError(why: string): never {
  process.stderr.write(`unpack-worker: ${why}\n`);
  process.exit(70);
}

// stdin: frames of [type u8][job id u32 BE][length u32 BE] and `length` bytes. A data frame's
// bytes go to the layer as they arrive, in pieces.
let header = Buffer.alloc(0);
let current: { type: number; id: number; left: number; body: Buffer[] } | undefined;
function onFrameEnd(f: { type: number; id: number; body: Buffer[] }) {
  if (f.type === FRAME_START) {
    if (jobs.has(f.id)) protocolError(`layer ${f.id} started twice`);
    const start = JSON.parse(Buffer.concat(f.body).toString("utf8")) as StartJob;
    if (start.id !== f.id || typeof start.dir !== "string" || !["gzip", "zstd", "none"].includes(start.compression)) protocolError(`malformed start of layer ${f.id}`);
    const job: Job = { inbox: new Inbox(), stop: new AbortController(), downloadEnd: new AbortController() };
    jobs.set(f.id, job);
    void run(start, job);
    if (start.fetch) {
      job.fetching = true;
      void download(start, job);
    }
  } else if (f.type === FRAME_END) {
    if (jobs.get(f.id)?.fetching) protocolError(`end of layer ${f.id} during its own download`);
    jobs.get(f.id)?.inbox.end();
  } else if (f.type === FRAME_ABORT) {
    const job = jobs.get(f.id);
    if (!job) return; // already ended
    const err = new Error(Buffer.concat(f.body).toString("utf8"));
    job.inbox.fail(err);
    job.stop.abort(err);
  }
}
process.stdin.on("data", (chunk: Buffer) => {
  let c = chunk;
  while (c.length) {
    if (!current) {
      const need = FRAME_HEADER - header.length;
      header = Buffer.concat([header, c.subarray(0, need)]);
      c = c.subarray(need);
      if (header.length < FRAME_HEADER) return;
      const type = header[0]!;
      const id = header.readUInt32BE(1);
      const left = header.readUInt32BE(5);
      header = Buffer.alloc(0);
      if (type !== FRAME_START && type !== FRAME_DATA && type !== FRAME_END && type !== FRAME_ABORT) protocolError(`unknown frame type ${type}`);
      if (type === FRAME_START && left > MAX_START_FRAME) protocolError(`start frame of ${left} bytes`);
      if (type === FRAME_ABORT && left > MAX_ABORT_REASON) protocolError(`abort frame of ${left} bytes`);
      if (type === FRAME_END && left !== 0) protocolError("end frame with a body");
      current = { type, id, left, body: [] };
      if (left === 0) { onFrameEnd(current); current = undefined; }
      continue;
    }
    const piece = c.subarray(0, current.left);
    c = c.subarray(piece.length);
    current.left -= piece.length;
    if (current.type === FRAME_DATA) {
      const job = jobs.get(current.id);
      if (job?.fetching) protocolError(`data for layer ${current.id} during its own download`);
      job?.inbox.push(piece);
    }
    else current.body.push(piece);
    if (current.left === 0) { onFrameEnd(current); current = undefined; }
  }
});
// berthd gone (its end of the channel or of stdin closed): nothing is left to do.
process.stdin.on("end", () => process.exit(0));
process.on("disconnect", () => process.exit(0));

process.on("message", (m: ToWorker) => {
  const job = jobs.get(m.id);
  if (!job || m.t !== "synced") return;
  const s = job.synced;
  job.synced = undefined;
  s?.(m.error);
});

// While layers are in flight, a sign of life: berthd kills a process whose event loop is stuck.
setInterval(() => { if (jobs.size) post({ t: "alive", id: 0 }); }, HEARTBEAT_MS).unref();

// Every module is loaded: berthd hands this process layers only from now on.
post({ t: "ready", id: 0 });
