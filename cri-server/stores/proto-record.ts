// CRI messages inside persisted records (container config and resources, pod sandbox config).
// They are stored in protobuf binary form (base64): that depends only on field numbers and
// wire types, which cri-api keeps stable, and not on what protobuf JSON depends on - enum
// value names (cri-api v0.37 renamed the Signal values), field JSON names or a field's JSON
// form (v0.36.2 turned KeyValue.value from string into bytes, which JSON writes as base64).
// Records written before this format (protobuf JSON) are still read.
import { fromBinary, fromJson, toBinary, type DescMessage, type JsonValue, type MessageShape } from "@bufbuild/protobuf";
import { internal } from "../../oci-runtime/foundation/errdefs.ts";

/** The persisted form: `{ "pb": "<base64 of the binary message>" }`. */
export interface StoredMessage { pb: string }

/** Records are berth's own files, but a damaged one must not exhaust memory. */
export const MAX_STORED_MESSAGE_BYTES = 16 << 20;

export function storeMessage<D extends DescMessage>(schema: D, msg: MessageShape<D>): StoredMessage {
  return { pb: Buffer.from(toBinary(schema, msg)).toString("base64") };
}

const isStored = (v: unknown): v is StoredMessage => typeof v === "object" && v !== null && typeof (v as StoredMessage).pb === "string";

/** Reads a stored message: the binary form, or the protobuf JSON that older records hold. */
export function loadMessage<D extends DescMessage>(schema: D, stored: unknown, what: string): MessageShape<D> {
  try {
    if (isStored(stored)) {
      if (stored.pb.length > (MAX_STORED_MESSAGE_BYTES * 4) / 3 + 4) throw new Error(`larger than ${MAX_STORED_MESSAGE_BYTES} bytes`);
      return fromBinary(schema, Buffer.from(stored.pb, "base64"));
    }
    return fromJson(schema, (stored ?? {}) as JsonValue, { ignoreUnknownFields: true });
  } catch (err) {
    throw internal(`${what}: cannot read the stored ${schema.typeName}: ${(err as Error).message}`, err);
  }
}
