import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, fromBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { type ContainerFilterSchema, ContainerSchema, ContainerState, ListContainersRequestSchema, ListContainersResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import type { ContainerRecord } from "../container/container-record.ts";
import { encodeContainerList, listContainers } from "./container-list.ts";
import { Store } from "../stores/store.ts";
import type { Context } from "../context.ts";
import { Encoded } from "../rpc.ts";
import { toContainer } from "./container-view.ts";

const record = (i: number, over: Partial<ContainerRecord> = {}): ContainerRecord => ({
  id: `${i}`.padStart(64, "c"), name: `c${i}_0_pod`, sandboxId: "p".repeat(64), state: "created",
  metadata: { name: `c${i}`, attempt: i }, createdAt: "1700000000000000001", startedAt: "0", finishedAt: "0",
  exitCode: 0, reason: "", message: "",
  image: { image: "registry.example/busybox:latest", annotations: { a: "b" }, userSpecifiedImage: "busybox", runtimeHandler: "" },
  imageId: `sha256:${"1".repeat(64)}`, imageRef: `sha256:${"1".repeat(64)}`,
  // Long enough that a Container's length takes a two- or three-byte varint.
  labels: { app: "x", idx: String(i), big: "v".repeat(i * 200) }, annotations: { "a.b/c": "d" },
  logPath: "", config: {}, runtimeHandler: "", bundle: "/b", rootfs: "/b/rootfs", pid: 0, conmonPid: 0, cgroupsPath: "",
  resources: null, user: { uid: 0, gid: 0, additionalGids: [] }, stopSignal: "",
  ...over,
});

const decode = (bytes: Uint8Array) => fromBinary(ListContainersResponseSchema, bytes).containers;
const expected = (recs: ContainerRecord[]) => recs.map((r) => create(ContainerSchema, toContainer(r)));

test("the encoded list decodes to the same Containers as the messages built from the records", () => {
  const recs = [record(0), record(1, { state: "running" }), record(80, { state: "exited" })];
  assert.deepEqual(decode(encodeContainerList(recs)), expected(recs));
  assert.deepEqual(decode(encodeContainerList([])), []);
  assert.equal(encodeContainerList([]).length, 0);
});

test("a record's state change shows: a replaced record and one changed in place", () => {
  const a = record(3);
  assert.equal(decode(encodeContainerList([a]))[0]!.state, ContainerState.CONTAINER_CREATED);
  const b = { ...structuredClone(a), state: "running" as const };
  assert.equal(decode(encodeContainerList([b]))[0]!.state, ContainerState.CONTAINER_RUNNING);
  a.state = "exited";
  assert.equal(decode(encodeContainerList([a]))[0]!.state, ContainerState.CONTAINER_EXITED);
  assert.deepEqual(decode(encodeContainerList([a, b])), expected([a, b]));
});

test("with room for the gRPC prefix: the same bytes behind a prefix that holds their length, in one buffer", () => {
  const recs = [record(0), record(2, { state: "running" })];
  const plain = encodeContainerList(recs);
  const enc = Encoded.afterPrefix(encodeContainerList(recs, 5));
  assert.deepEqual(Buffer.from(enc.bytes), plain);
  assert.equal(enc.framed![0], 0, "not compressed");
  assert.equal(enc.framed!.readUInt32BE(1), plain.length);
  assert.equal(enc.framed!.buffer, enc.bytes.buffer, "no copy");
  assert.equal(Encoded.afterPrefix(encodeContainerList([], 5)).framed!.length, 5);
});

test("ListContainers keeps the relist replies (no filter, a state alone) until the store changes", async () => {
  const dir = await mkdtemp(join(tmpdir(), "berth-list-"));
  try {
    const store = new Store<ContainerRecord>("container", dir);
    const ctx = { containers: { store, list: () => store.list() } } as unknown as Context;
    const list = (filter?: MessageInitShape<typeof ContainerFilterSchema>) =>
      listContainers(ctx, create(ListContainersRequestSchema, filter ? { filter } : {}), {} as never) as Promise<Encoded<typeof ListContainersResponseSchema>>;
    await store.add(record(1));
    await store.add(record(2, { state: "running" }));
    const all = await list();
    assert.equal(await list(), all, "the same reply again");
    assert.equal(await list({}), all, "an empty filter is no filter");
    const running = await list({ state: { state: ContainerState.CONTAINER_RUNNING } });
    assert.notEqual(running, all);
    assert.equal(await list({ state: { state: ContainerState.CONTAINER_RUNNING } }), running);
    assert.deepEqual(decode(running.bytes).map((c) => c.id), [record(2).id]);
    // Filters by id, pod or label are answered afresh each time.
    const byId = await list({ id: record(1).id });
    assert.notEqual(await list({ id: record(1).id }), byId);
    assert.notEqual(await list({ labelSelector: { app: "x" } }), await list({ labelSelector: { app: "x" } }));
    // So is a state CRI does not define: a client sending ever new numbers there keeps nothing.
    const odd = { state: { state: 99 as ContainerState } };
    assert.notEqual(await list(odd), await list(odd));
    assert.deepEqual(decode((await list(odd)).bytes), []);
    for (const st of [ContainerState.CONTAINER_CREATED, ContainerState.CONTAINER_EXITED, ContainerState.CONTAINER_UNKNOWN]) {
      assert.equal(await list({ state: { state: st } }), await list({ state: { state: st } }), `state ${st} kept`);
    }
    // A change in the store: new replies, with the change in them.
    await store.update(record(1).id, (r) => { r.state = "running"; });
    const after = await list();
    assert.notEqual(after, all);
    assert.deepEqual(decode(after.bytes).map((c) => c.state), [ContainerState.CONTAINER_RUNNING, ContainerState.CONTAINER_RUNNING]);
    assert.deepEqual(decode((await list({ state: { state: ContainerState.CONTAINER_RUNNING } })).bytes).length, 2);
    await store.delete(record(2).id);
    assert.deepEqual(decode((await list()).bytes).map((c) => c.id), [record(1).id]);
    await store.add(record(3));
    assert.equal(decode((await list()).bytes).length, 2);
    // The kept reply is framed as any other: prefix, then the message.
    const framed = (await list()).framed!;
    assert.equal(framed.readUInt32BE(1), framed.length - 5);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
