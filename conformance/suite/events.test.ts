// GetContainerEvents over the real socket: every subscriber gets every event of a
// container's lifecycle, in order, with the pod and container statuses attached.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ContainerEventType, ContainerState, PodSandboxState, type ContainerEventResponse } from "../../proto/gen/runtime/v1/api_pb.js";
import { podConfig, startPodEnv, type PodEnv } from "../lib/pod.ts";

const { CONTAINER_CREATED_EVENT: CREATED, CONTAINER_STARTED_EVENT: STARTED, CONTAINER_STOPPED_EVENT: STOPPED, CONTAINER_DELETED_EVENT: DELETED } = ContainerEventType;

/** A GetContainerEvents stream whose messages are collected as they arrive. */
interface Subscriber { events: ContainerEventResponse[]; cancel(): void; done: Promise<void> }

function subscribe(env: PodEnv): Subscriber {
  const { messages, cancel } = env.b.client.runtime.getContainerEvents({});
  const events: ContainerEventResponse[] = [];
  const done = (async () => {
    try { for await (const m of messages) events.push(m); } catch { /* cancelled */ }
  })();
  return { events, cancel, done };
}

async function eventually<T>(what: string, fn: () => T | undefined | false, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const typesOf = (s: Subscriber, id: string) => s.events.filter((e) => e.containerId === id).map((e) => e.containerEventType);

describe("container events", () => {
  let env: PodEnv;
  let podId = "";
  const pod = podConfig();
  const subs: Subscriber[] = [];

  const c = () => env.b.client.runtime;
  const create = async (name: string, script: string) => (await c().createContainer({
    podSandboxId: podId,
    sandboxConfig: pod,
    config: { metadata: { name, attempt: 0 }, image: { image: env.images!.busybox }, command: ["sh", "-c", script] },
  })).containerId;

  before(async () => {
    env = await startPodEnv({ images: true });
    await env.b.client.image.pullImage({ image: { image: env.images!.busybox } });
    podId = (await c().runPodSandbox({ config: pod })).podSandboxId;
    subs.push(subscribe(env), subscribe(env));
    // The streams carry no acknowledgement: a first container's CREATED on both shows they are listening.
    const warm = await create("warm-up", "sleep 1");
    await eventually("both subscribers to be listening", () => subs.every((s) => typesOf(s, warm).includes(CREATED)));
    await c().removeContainer({ containerId: warm });
  });
  after(async () => {
    for (const s of subs) s.cancel();
    await Promise.all(subs.map((s) => s.done));
    await env.cleanup();
  });

  test("both subscribers get CREATED, STARTED, STOPPED, DELETED in order for a stopped container, with statuses", async () => {
    const id = await create("lifecycle", "sleep 100000");
    await c().startContainer({ containerId: id });
    await c().stopContainer({ containerId: id, timeout: 0n });
    await c().removeContainer({ containerId: id });
    for (const [i, s] of subs.entries()) {
      await eventually(`subscriber ${i} to see DELETED`, () => typesOf(s, id).includes(DELETED));
      assert.deepEqual(typesOf(s, id), [CREATED, STARTED, STOPPED, DELETED], `subscriber ${i} order`);
      const evs = s.events.filter((e) => e.containerId === id);
      for (const e of evs) {
        assert.equal(e.podSandboxStatus?.id, podId, "pod status attached");
        assert.equal(e.podSandboxStatus?.state, PodSandboxState.SANDBOX_READY);
        assert.ok(e.createdAt > 0n);
        assert.ok(e.containersStatuses.some((st) => st.id === id), "the container's status attached");
      }
      const stateIn = (t: ContainerEventType) => evs.find((e) => e.containerEventType === t)!.containersStatuses.find((st) => st.id === id)!.state;
      assert.equal(stateIn(CREATED), ContainerState.CONTAINER_CREATED);
      assert.equal(stateIn(STARTED), ContainerState.CONTAINER_RUNNING);
      assert.equal(stateIn(STOPPED), ContainerState.CONTAINER_EXITED);
      for (let k = 1; k < evs.length; k++) assert.ok(evs[k]!.createdAt >= evs[k - 1]!.createdAt, "timestamps do not go back");
    }
  });

  test("a container that exits by itself gets a STOPPED event with its exit code, on both subscribers", async () => {
    const id = await create("exits", "exit 3");
    await c().startContainer({ containerId: id });
    for (const [i, s] of subs.entries()) {
      await eventually(`subscriber ${i} to see STOPPED`, () => typesOf(s, id).includes(STOPPED));
      assert.deepEqual(typesOf(s, id), [CREATED, STARTED, STOPPED], `subscriber ${i} order`);
      const stopped = s.events.find((e) => e.containerId === id && e.containerEventType === STOPPED)!;
      const st = stopped.containersStatuses.find((x) => x.id === id)!;
      assert.equal(st.state, ContainerState.CONTAINER_EXITED);
      assert.equal(st.exitCode, 3);
      assert.equal(st.reason, "Error");
    }
    await c().removeContainer({ containerId: id });
    for (const [i, s] of subs.entries()) {
      await eventually(`subscriber ${i} to see DELETED`, () => typesOf(s, id).includes(DELETED));
      assert.deepEqual(typesOf(s, id), [CREATED, STARTED, STOPPED, DELETED], `subscriber ${i} order`);
    }
  });

  test("a subscriber that joins later gets only later events", async () => {
    const id = await create("late", "sleep 100000");
    const late = subscribe(env);
    try {
      // Wait for the late stream to be listening: a warm-up container's CREATED reaches it.
      const probe = await create("late-probe", "sleep 1");
      await eventually("late subscriber to listen", () => typesOf(late, probe).includes(CREATED));
      await c().removeContainer({ containerId: probe });
      await c().removeContainer({ containerId: id });
      await eventually("late subscriber to see DELETED", () => typesOf(late, id).includes(DELETED));
      const seen = typesOf(late, id);
      assert.ok(!seen.includes(CREATED), `no replay of events before subscribing (saw ${seen.join(",")})`);
      assert.equal(seen.at(-1), DELETED);
    } finally {
      late.cancel();
      await late.done;
    }
  });
});
