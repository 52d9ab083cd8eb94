// The pull process of pull-process.ts (node, forked by berthd): runs ImageService.fetchImage for
// each pull berthd hands it, on berthd's image root, and answers with the image's record, which
// berthd stores. It writes its log lines to stderr, which berthd copies into its own, and exits
// when berthd closes the IPC channel. Its messages come from berthd alone. It says it is alive
// every HEARTBEAT_MS. Before a pull looks for or writes a blob or layer, berthd holds it against
// its GC (a "hold" message, answered "held").
import { BerthError, Code } from "../oci-runtime/foundation/errdefs.ts";
import { createLogger, setLogLevel, type Level } from "../oci-runtime/foundation/log.ts";
import { ImageService } from "./image-service.ts";
import { HEARTBEAT_MS, PULL_PROCESS_UNPACKS, type FromPullProcess, type PullError, type ToPullProcess } from "./pull-process.ts";
import { parseReference } from "./reference.ts";
import { unpackPacer } from "./snapshots/gc-pacer.ts";

if (!process.send) throw new Error("pull-worker runs only as a process forked with an IPC channel");
const send = (m: FromPullProcess) => { if (process.connected) process.send!(m); };
const log = createLogger({ process: "pull" });
/** Collections paced by what the layer this process unpacks itself takes in (it has --expose-gc, pull-process.ts). */
const pacer = unpackPacer();
let svc: ImageService | undefined;
/** Hold requests berthd has not answered yet, by sequence number. */
const holds = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
let nextSeq = 1;

function errorOf(err: unknown): PullError {
  const e = BerthError.from(err);
  const cause = e.cause instanceof Error ? e.cause.message : e.cause === undefined ? undefined : String(e.cause);
  if (e.code === Code.INTERNAL) log.error("pull failed", { error: err });
  return { code: e.code, message: e.message, ...(cause ? { cause } : {}) };
}

process.on("disconnect", () => process.exit(0));
process.on("message", (m: ToPullProcess) => {
  if (m.t === "init") {
    if (svc) return;
    const { logLevel, trust, pullProcessUnpacks, ...config } = m.config;
    setLogLevel(logLevel as Level);
    svc = new ImageService({
      ...config, log, unpackHere: { layers: pullProcessUnpacks ?? PULL_PROCESS_UNPACKS, took: (bytes) => pacer.took(bytes) },
      ...(trust ? { trust: { ...trust, onOutcome: (outcome) => send({ t: "trust", outcome }) } } : {}),
    });
    send({ t: "ready" });
    // berthd kills a process that stays silent with pulls in flight (SILENCE_MS)
    setInterval(() => send({ t: "alive" }), HEARTBEAT_MS).unref();
  } else if (m.t === "held") {
    const h = holds.get(m.seq);
    if (!h) return;
    holds.delete(m.seq);
    if (m.error) h.reject(new BerthError(Code.UNAVAILABLE, `berthd refused the pull's hold: ${m.error}`));
    else h.resolve();
  } else if (m.t === "pull") {
    const service = svc;
    const { id, job } = m;
    void (async () => {
      try {
        if (!service) throw new Error("a pull before init");
        // The holds are berthd's (its GC's): asked for, and the pull goes on once berthd has them.
        const hold = (...keys: string[]) => new Promise<void>((resolve, reject) => {
          const seq = nextSeq++;
          holds.set(seq, { resolve, reject });
          send({ t: "hold", id, seq, keys });
        });
        const result = await service.fetchImage(parseReference(job.ref), job.auth, job.namespace, job.have, hold);
        send({ t: "done", id, result });
      } catch (err) {
        send({ t: "failed", id, error: errorOf(err) });
      }
    })();
  }
});
