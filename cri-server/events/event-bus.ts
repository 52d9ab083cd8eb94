// Fan-out of container events to GetContainerEvents streams. Every
// subscriber has its own bounded queue; publish never blocks. A subscriber
// whose queue overflows is dropped with RESOURCE_EXHAUSTED so a slow stream
// cannot hold up the others or grow memory without bound. publish() is
// synchronous and queues are FIFO, so every subscriber sees events in
// publish order (and therefore in order per container).

import { type BerthError, resourceExhausted, unavailable } from "../../oci-runtime/foundation/errdefs.ts";

export interface EventBusOptions {
  /** Events buffered per subscriber before it is dropped (default 1024). */
  queueSize?: number;
}

export interface SubscribeOptions {
  /** Aborting closes the subscription (e.g. the gRPC call was cancelled). */
  signal?: AbortSignal;
}

export interface Subscription<E> extends AsyncIterableIterator<E> {
  /** Ends the iteration (pending next() resolves done) and unsubscribes. */
  close(): void;
  readonly closed: boolean;
}

export class EventBus<E> {
  readonly #queueSize: number;
  readonly #subs = new Set<Sub<E>>();

  constructor(opts: EventBusOptions = {}) {
    this.#queueSize = opts.queueSize ?? 1024;
    if (!Number.isInteger(this.#queueSize) || this.#queueSize < 1) throw new RangeError(`event queue size must be a positive integer, got ${this.#queueSize}`);
  }

  publish(event: E): void {
    for (const s of [...this.#subs]) s.push(event);
  }

  subscribe(opts: SubscribeOptions = {}): Subscription<E> {
    const sub = new Sub<E>(this.#queueSize, () => this.#subs.delete(sub));
    if (opts.signal?.aborted) {
      sub.close();
      return sub;
    }
    this.#subs.add(sub);
    opts.signal?.addEventListener("abort", () => sub.close(), { once: true });
    return sub;
  }

  get subscriberCount(): number {
    return this.#subs.size;
  }

  /** Ends every subscription with UNAVAILABLE (daemon shutting down). */
  close(): void {
    for (const s of [...this.#subs]) s.fail(unavailable("event stream closed: berth is shutting down"));
  }
}

class Sub<E> implements Subscription<E> {
  #queue: E[] = [];
  #head = 0;
  #waiter: { resolve: (r: IteratorResult<E>) => void; reject: (e: unknown) => void } | undefined;
  #error: BerthError | undefined;
  #closed = false;
  readonly #max: number;
  readonly #onEnd: () => void;

  constructor(max: number, onEnd: () => void) {
    this.#max = max;
    this.#onEnd = onEnd;
  }

  get closed(): boolean {
    return this.#closed;
  }

  push(ev: E): void {
    if (this.#closed) return;
    if (this.#waiter) {
      const w = this.#waiter;
      this.#waiter = undefined;
      w.resolve({ value: ev, done: false });
      return;
    }
    if (this.#queue.length - this.#head >= this.#max) {
      this.fail(resourceExhausted(`container event subscriber dropped: more than ${this.#max} events waiting`));
      return;
    }
    this.#queue.push(ev);
  }

  fail(err: BerthError): void {
    if (this.#closed) return;
    this.#error = err;
    this.#end();
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.reject(err);
  }

  close(): void {
    if (this.#closed) return;
    this.#end();
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.resolve({ value: undefined, done: true });
  }

  #end(): void {
    this.#closed = true;
    this.#queue = [];
    this.#head = 0;
    this.#onEnd();
  }

  next(): Promise<IteratorResult<E>> {
    if (this.#head < this.#queue.length) {
      const value = this.#queue[this.#head++]!;
      if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#head);
        this.#head = 0;
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.#error) {
      const err = this.#error;
      this.#error = undefined; // reported once; afterwards the iterator is just done
      return Promise.reject(err);
    }
    if (this.#closed) return Promise.resolve({ value: undefined, done: true });
    if (this.#waiter) return Promise.reject(new Error("event subscription: next() called while a previous next() is pending"));
    return new Promise((resolve, reject) => { this.#waiter = { resolve, reject }; });
  }

  return(): Promise<IteratorResult<E>> {
    this.close();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
