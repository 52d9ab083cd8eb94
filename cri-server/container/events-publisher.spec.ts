import { test } from "node:test";
import assert from "node:assert/strict";
import { createLogger } from "../../oci-runtime/foundation/log.ts";
import { ContainerEventType, type ContainerEvent } from "../events/container-event.ts";
import { EventBus } from "../events/event-bus.ts";
import type { ContainerRecord } from "./container-record.ts";
import { containerEventPublisher } from "./deps.ts";

test("container events build the pod's statuses only while someone subscribes", async () => {
  const bus = new EventBus<ContainerEvent>();
  let built = 0;
  const pub = containerEventPublisher(bus, createLogger({}, () => {}), () => { built++; return { containersStatuses: ["s"] }; });
  const rec = { id: "c1" } as ContainerRecord;
  pub.publish(rec, ContainerEventType.CONTAINER_CREATED_EVENT);
  assert.equal(built, 0, "no subscriber: no statuses built (the event had nobody to reach)");
  const ac = new AbortController();
  const sub = bus.subscribe({ signal: ac.signal });
  pub.publish(rec, ContainerEventType.CONTAINER_STARTED_EVENT);
  assert.equal(built, 1);
  const { value } = await sub.next();
  assert.equal(value.containerId, "c1");
  assert.equal(value.containerEventType, ContainerEventType.CONTAINER_STARTED_EVENT);
  assert.deepEqual(value.containersStatuses, ["s"]);
  ac.abort();
  pub.publish(rec, ContainerEventType.CONTAINER_STOPPED_EVENT);
  assert.equal(built, 1, "after the subscriber left: nothing built again");
});
