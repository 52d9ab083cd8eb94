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
