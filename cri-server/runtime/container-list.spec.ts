import { test } from "node:test";
import assert from "node:assert/strict";
import { create, fromBinary } from "@bufbuild/protobuf";
import { ContainerSchema, ContainerState, ListContainersResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import type { ContainerRecord } from "../container/container-record.ts";
import { encodeContainerList } from "./container-list.ts";
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
