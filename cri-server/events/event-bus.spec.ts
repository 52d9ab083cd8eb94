import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { ContainerEventResponseSchema, ContainerEventType as ProtoType } from "../../proto/gen/runtime/v1/api_pb.js";
import { BerthError, Code } from "../../oci-runtime/foundation/errdefs.ts";
import { ContainerEventType, containerEvent, type ContainerEvent } from "./container-event.ts";
import { EventBus } from "./event-bus.ts";

const { CONTAINER_CREATED_EVENT: CREATED, CONTAINER_STARTED_EVENT: STARTED, CONTAINER_STOPPED_EVENT: STOPPED, CONTAINER_DELETED_EVENT: DELETED } = ContainerEventType;

async function take<E>(it: AsyncIterator<E>, n: number): Promise<E[]> {
  const out: E[] = [];
  for (let i = 0; i < n; i++) {
    const r = await it.next();
    if (r.done) break;
    out.push(r.value);
  }
  return out;
}

describe("ContainerEventType", () => {
  it("matches the CRI enum", () => {
    assert.equal(CREATED, ProtoType.CONTAINER_CREATED_EVENT);
    assert.equal(STARTED, ProtoType.CONTAINER_STARTED_EVENT);
    assert.equal(STOPPED, ProtoType.CONTAINER_STOPPED_EVENT);
    assert.equal(DELETED, ProtoType.CONTAINER_DELETED_EVENT);
    const msg = create(ContainerEventResponseSchema, containerEvent("c1", STOPPED, { createdAt: 7n }));
    assert.equal(msg.containerEventType, ProtoType.CONTAINER_STOPPED_EVENT);
    assert.equal(msg.createdAt, 7n);
  });
});

describe("EventBus", () => {
  it("delivers every event to two subscribers in publish order", async () => {
    const bus = new EventBus<ContainerEvent>();
    const a = bus.subscribe();
    const b = bus.subscribe();
    const lifecycle = [CREATED, STARTED, STOPPED, DELETED] as const;
    // interleave two containers; a is already waiting before the first publish
    const pendingA = take(a, 8);
    for (const t of lifecycle) {
      bus.publish(containerEvent("c1", t, { createdAt: 1n }));
      bus.publish(containerEvent("c2", t, { createdAt: 2n }));
    }
    const gotA = await pendingA;
    const gotB = await take(b, 8);
    const expected = lifecycle.flatMap((t) => [["c1", t], ["c2", t]]);
    assert.deepEqual(gotA.map((e) => [e.containerId, e.containerEventType]), expected);
    assert.deepEqual(gotB.map((e) => [e.containerId, e.containerEventType]), expected);
  });

  it("drops a subscriber that overflows without holding up the others", async () => {
    const bus = new EventBus<number>({ queueSize: 3 });
    const slow = bus.subscribe();
    const fast = bus.subscribe();
    const seen: number[] = [];
    const consumer = (async () => { for await (const n of fast) { seen.push(n); if (seen.length === 10) break; } })();
    for (let i = 0; i < 10; i++) {
      bus.publish(i);
      await new Promise((r) => setImmediate(r));
    }
    await consumer;
    assert.deepEqual(seen, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.equal(slow.closed, true);
    await assert.rejects(slow.next(), (e: unknown) => e instanceof BerthError && e.code === Code.RESOURCE_EXHAUSTED && /3 events/.test(e.message));
    assert.deepEqual(await slow.next(), { value: undefined, done: true });
    assert.equal(bus.subscriberCount, 0, "break in for-await unsubscribed fast; overflow removed slow");
  });

  it("close ends a pending next and unsubscribes; abort signals close too", async () => {
    const bus = new EventBus<string>();
    const s = bus.subscribe();
    const pending = s.next();
    s.close();
    assert.deepEqual(await pending, { value: undefined, done: true });
    bus.publish("late");
    assert.deepEqual(await s.next(), { value: undefined, done: true });

    const ac = new AbortController();
    const t = bus.subscribe({ signal: ac.signal });
    assert.equal(bus.subscriberCount, 1);
    ac.abort();
    assert.equal(bus.subscriberCount, 0);
    assert.equal(t.closed, true);
  });

  it("bus close fails subscribers with unavailable", async () => {
    const bus = new EventBus<string>();
    const s = bus.subscribe();
    const pending = s.next();
    bus.close();
    await assert.rejects(pending, (e: unknown) => e instanceof BerthError && e.code === Code.UNAVAILABLE);
  });
});
