// When an unpack process (unpack-worker.ts) asks V8 for a collection. A layer passes through it
// as buffers that die young: the socket's reads, the batches for the decompressor, its output
// chunks. V8 counts their bytes as external memory and collects them only once that has grown
// large: ArrayBuffers held 44-59 MB at an unpack process's peak RSS (101-126 MB) in the bench's
// pull. The pacer looks at the process's ArrayBuffers every `checkEveryBytes` taken in and
// collects once they have grown by `growthBytes` since its last collection: what is still live
// after one (a layer's queues) is its new baseline, so live bytes never set off collection after
// collection.

export interface GcPacerOptions {
  checkEveryBytes: number;
  growthBytes: number;
  /** Bytes held by ArrayBuffers now (process.memoryUsage().arrayBuffers). */
  arrayBuffers: () => number;
  /** A full, synchronous collection. */
  collect: () => void;
}

export class GcPacer {
  readonly #o: GcPacerOptions;
  #sinceCheck = 0;
  #liveAfterGc = 0;
  /** Collections so far. */
  collections = 0;

  constructor(o: GcPacerOptions) { this.#o = o; }

  /** `bytes` more were taken in; collects when they are due. */
  took(bytes: number): void {
    this.#sinceCheck += bytes;
    if (this.#sinceCheck < this.#o.checkEveryBytes) return;
    this.#sinceCheck = 0;
    if (this.#o.arrayBuffers() <= this.#liveAfterGc + this.#o.growthBytes) return;
    this.#o.collect();
    this.collections++;
    this.#liveAfterGc = this.#o.arrayBuffers();
  }
}

/**
 * The pacer of a process that unpacks layers (unpack-worker.ts, and the pull process for the layer
 * it unpacks itself; both are started with --expose-gc). Every MB taken in, a full collection once
 * ArrayBuffers have grown by 8 MB since the last one. In the bench's cold pull (berth alone, 3
 * pulls each, two alternating rounds), the peak of berthd with its children went from 340 and 317
 * to 294 and 295 MB RSS, and from 193 and 171 to 147 and 148 MB PSS; the pull took 0.64-0.66 s
 * against 0.60-0.68 s, with 0.86-0.89 s of CPU against 0.80-0.92 s. A growth of 16 MB saved about
 * half as much (305-313 MB RSS). Without a gc function (no --expose-gc) it never collects.
 */
export function unpackPacer(): GcPacer {
  const gc = (globalThis as { gc?: (o: object) => void }).gc;
  return new GcPacer({
    checkEveryBytes: 1 << 20,
    growthBytes: 8 << 20,
    arrayBuffers: () => process.memoryUsage().arrayBuffers,
    collect: () => gc?.({ type: "major", execution: "sync" }),
  });
}
