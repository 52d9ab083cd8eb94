// What berthd and its unpack process (unpack-worker.ts) say to each other. berthd -> process:
// frames on the process's stdin, [type u8][layer id u32 BE][length u32 BE] and `length` bytes
// (a layer's start as JSON, its compressed bytes, its end or its abort: one stream, so they
// arrive in the order sent), plus "synced" over the IPC channel (the answer to a question the
// process asked). Process -> berthd: IPC messages.
import type { DirectBlob } from "../registry/http.ts";
import type { Compression } from "../registry/media-types.ts";
import type { RawInput, UnpackLimits, UnpackResult } from "./unpack.ts";

export const FRAME_HEADER = 9;
export const FRAME_START = 1;
export const FRAME_DATA = 2;
export const FRAME_END = 3;
/** Stops a layer; the body is the reason (UTF-8, at most MAX_ABORT_REASON bytes). */
export const FRAME_ABORT = 4;
export const MAX_ABORT_REASON = 1024;
/** The most a start frame may carry (a JSON job description); a process ends at a larger one. */
export const MAX_START_FRAME = 64 << 10;

/** A frame's header. */
export function frameHeader(type: number, id: number, length: number): Buffer {
  const h = Buffer.allocUnsafe(FRAME_HEADER);
  h[0] = type;
  h.writeUInt32BE(id, 1);
  h.writeUInt32BE(length, 5);
  return h;
}

export interface StartJob {
  id: number; compression: Compression; dir: string; helper?: string; limits?: Partial<UnpackLimits>;
  /**
   * The process downloads the layer itself with this GET, and says "fetched" when it stops. Only
   * if that was short of the blob's size does berthd send the rest in data frames (then the end).
   */
  fetch?: DirectBlob;
}
/** Bytes a process's own download may be ahead of its unpack. */
export const FETCH_AHEAD = 4 << 20;
export type ToWorker = { t: "synced"; id: number; error?: string };
export interface WorkerError { kind: "limit" | "tar" | "breakout" | "other"; message: string; limit?: string; entry?: string; code?: string }
/** A process with layers in flight says "alive" this often; its event loop is turning. */
export const HEARTBEAT_MS = 2_000;
export type FromWorker =
  | { t: "ready"; id: 0 }
  | { t: "alive"; id: 0 }
  | { t: "ack"; id: number; bytes: number }
  /** The process's own download (StartJob.fetch) stopped after `bytes`: complete, or failed with `error`. */
  | { t: "fetched"; id: number; bytes: number; error?: string }
  | { t: "sync"; id: number; diffId: string; raw: RawInput }
  | { t: "done"; id: number; result: UnpackResult }
  | { t: "failed"; id: number; error: WorkerError };
