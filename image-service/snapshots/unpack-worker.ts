// The worker thread side of unpack-pool.ts: runs unpackLayer (decompress, hash, tar, file
// creation) for the layers the main thread hands it, fed with the compressed bytes it downloads.
// "abort" stops a layer at once (its berth-layer helper is killed, so no wait for it remains).
// Every message is checked for its shape; the main thread is the only sender.
import { parentPort } from "node:worker_threads";
import { LayerLimitError, TarError } from "./tar-reader.ts";
import { BreakoutError } from "./safe-path.ts";
import { unpackLayer, type RawInput } from "./unpack.ts";
import type { FromWorker, StartJob, ToWorker, WorkerError } from "./unpack-pool.ts";

const port = parentPort;
if (!port) throw new Error("unpack-worker.ts runs only as a worker thread");

/** Input chunks of the current job, in order; a waiting reader, or the end or failure. */
class Inbox {
  #chunks: Buffer[] = [];
  #end = false;
  #failure: Error | undefined;
  #wake: (() => void) | undefined;
  push(c: Buffer) { this.#chunks.push(c); this.#poke(); }
  end() { this.#end = true; this.#poke(); }
  fail(err: Error) { this.#failure ??= err; this.#poke(); }
  #poke() { const w = this.#wake; this.#wake = undefined; w?.(); }
  async *read(ack: (bytes: number) => void): AsyncGenerator<Buffer> {
    for (;;) {
      if (this.#failure) throw this.#failure;
      const c = this.#chunks.shift();
      if (c) { ack(c.length); yield c; continue; }
      if (this.#end) return;
      await new Promise<void>((r) => { this.#wake = r; });
    }
  }
}

function describe(err: unknown): WorkerError {
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof LayerLimitError) return { kind: "limit", message, limit: err.limit };
  if (err instanceof TarError) return { kind: "tar", message };
  if (err instanceof BreakoutError) return { kind: "breakout", message, entry: err.entry };
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return { kind: "other", message, ...(typeof code === "string" ? { code } : {}) };
}

interface Job { inbox: Inbox; stop: AbortController; synced?: (err?: string) => void }
/** Jobs in flight on this worker, by id: a worker unpacks several layers at once. */
const jobs = new Map<number, Job>();
const post = (m: FromWorker) => port.postMessage(m);

async function run(start: StartJob) {
  const inbox = new Inbox();
  const current: Job = { inbox, stop: new AbortController() };
  jobs.set(start.id, current);
  let checked: { diffId: string; raw: RawInput } | undefined;
  try {
    const res = await unpackLayer(inbox.read((bytes) => post({ t: "ack", id: start.id, bytes })), start.compression, start.dir, {
      ...(start.helper ? { helper: start.helper } : {}),
      ...(start.limits ? { limits: start.limits } : {}),
      signal: current.stop.signal,
      beforeSync: (diffId, raw) => { checked = { diffId, raw }; },
      // The flush is the main thread's (one syncfs shared by the layers in flight), and so is
      // the check of the digests, which comes first: a refused layer is never flushed.
      sync: async () => {
        if (!checked) throw new Error("layer flushed before its digests were known");
        const { diffId, raw } = checked;
        const err = await new Promise<string | undefined>((resolve) => { current.synced = resolve; post({ t: "sync", id: start.id, diffId, raw }); });
        if (err !== undefined) throw new Error(err);
      },
    });
    post({ t: "done", id: start.id, result: res });
  } catch (err) {
    post({ t: "failed", id: start.id, error: describe(err) });
  } finally {
    jobs.delete(start.id);
    inbox.fail(new Error("layer unpack ended")); // releases a read still waiting for input
  }
}

port.on("message", (m: ToWorker) => {
  if (m.t === "start") {
    if (jobs.has(m.id)) { post({ t: "failed", id: m.id, error: { kind: "other", message: `unpack job ${m.id} is already running` } }); return; }
    void run(m);
    return;
  }
  const job = jobs.get(m.id);
  if (!job) return;
  switch (m.t) {
    case "data": {
      // The batch was allocated by the main thread: it is copied into memory of this thread's
      // own and released at once (detached). Left to this thread's garbage collector, batches
      // waited in the main thread's malloc heap, which kept its peak after the pull.
      const own = Buffer.allocUnsafe(m.chunk.byteLength);
      own.set(new Uint8Array(m.chunk));
      m.chunk.transfer(0);
      job.inbox.push(own);
      return;
    }
    case "end": job.inbox.end(); return;
    case "abort": { const err = new Error(m.message); job.inbox.fail(err); job.stop.abort(err); return; }
    case "synced": { const s = job.synced; job.synced = undefined; s?.(m.error); return; }
  }
});

// Every module is loaded: the pool hands this worker layers only from now on.
post({ t: "ready", id: 0 });
