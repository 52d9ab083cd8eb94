import { create, toBinary } from "@bufbuild/protobuf";
import { ContainerSchema, ContainerState, type ListContainersRequestSchema, type ListContainersResponseSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import type { ContainerFilter } from "../../proto/gen/runtime/v1/api_pb.js";
import type { ContainerRecord } from "../container/container-record.ts";
import type { Context } from "../context.ts";
import { Encoded, type EncodedUnaryImpl } from "../rpc.ts";
import { matchIdPrefix, matchLabels } from "./filters.ts";
import { criContainerState, toContainer } from "./container-view.ts";

/**
 * The containers a ListContainers filter selects: id prefix, state, pod sandbox id (prefix), label selector.
 * Served from memory: exits reach the records through the exit-file watcher
 * (inotify, with a 1 s polling fallback), so listing hundreds of containers reads no file.
 */
export function listContainerRecords(ctx: Context, f: ContainerFilter | undefined): ContainerRecord[] {
  return ctx.containers.list()
    .filter((rec) => matchIdPrefix(rec.id, f?.id) && matchIdPrefix(rec.sandboxId, f?.podSandboxId) && matchLabels(rec.labels, f?.labelSelector))
    .filter((rec) => !f?.state || f.state.state === criContainerState(rec));
}

/**
 * Each record's Container message in wire format. A record is replaced, never changed, when the
 * store updates it; of what a Container shows only the state changes in a container's life, so an
 * entry is also checked against the record's state.
 */
const wire = new WeakMap<ContainerRecord, { state: string; bytes: Uint8Array }>();

function containerBytes(rec: ContainerRecord): Uint8Array {
  const kept = wire.get(rec);
  if (kept && kept.state === rec.state) return kept.bytes;
  const bytes = toBinary(ContainerSchema, create(ContainerSchema, toContainer(rec)));
  wire.set(rec, { state: rec.state, bytes });
  return bytes;
}

/**
 * ListContainersResponse { repeated Container containers = 1 }: each as field 1, length-delimited,
 * from octet `room` of the buffer on (the server writes the gRPC message prefix in front).
 */
export function encodeContainerList(recs: ContainerRecord[], room = 0): Buffer {
  const parts = recs.map(containerBytes);
  let size = room;
  for (const p of parts) size += 1 + varintSize(p.length) + p.length;
  const out = Buffer.allocUnsafe(size);
  let at = room;
  for (const p of parts) {
    out[at++] = 0x0a; // field 1, wire type 2
    for (let n = p.length; ; n >>>= 7) {
      if (n < 0x80) { out[at++] = n; break; }
      out[at++] = (n & 0x7f) | 0x80;
    }
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function varintSize(n: number): number {
  let s = 1;
  while (n >= 0x80) { n >>>= 7; s++; }
  return s;
}

type Reply = Encoded<typeof ListContainersResponseSchema>;

/**
 * Whole replies to the filters kubelet's relist sends every second (none, or a state alone),
 * kept while the container store's version stays the same: a repeated call sends the same bytes
 * again without going over the records or copying them. One reply per such filter (five at
 * most), dropped at the store's next change. A reply is never written to once built; the server
 * only reads it.
 */
const replies = new WeakMap<object, { version: number; byFilter: Map<string, Reply> }>();

/**
 * The key of a filter whose reply is kept: no filter, or a state alone, one of the four CRI
 * defines (a client may send any number there; those are answered afresh, and keep nothing).
 */
function relistKey(f: ContainerFilter | undefined): string | undefined {
  if (!f) return "all";
  if (f.id || f.podSandboxId) return undefined;
  for (const _ in f.labelSelector) return undefined;
  if (!f.state) return "all";
  const s = f.state.state;
  return s >= ContainerState.CONTAINER_CREATED && s <= ContainerState.CONTAINER_UNKNOWN ? `state ${s}` : undefined;
}

/** ListContainers: the selected containers, encoded from each record's kept wire form. */
export const listContainers: EncodedUnaryImpl<typeof ListContainersRequestSchema, typeof ListContainersResponseSchema> = async (ctx, req) => {
  const build = (): Reply => Encoded.afterPrefix(encodeContainerList(listContainerRecords(ctx, req.filter), 5));
  const key = relistKey(req.filter);
  if (key === undefined) return build();
  const store = ctx.containers.store;
  let kept = replies.get(store);
  if (!kept || kept.version !== store.version) {
    kept = { version: store.version, byFilter: new Map() };
    replies.set(store, kept);
  }
  let reply = kept.byFilter.get(key);
  if (!reply) {
    reply = build();
    kept.byFilter.set(key, reply);
  }
  return reply;
};
