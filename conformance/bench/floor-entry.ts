// The floor under berthd's memory, run by conformance/bench/floor.ts as a bundle of its own: a
// node process with what berthd cannot do without and nothing of berth: the built-ins berthd takes
// at load, protobuf-es with the CRI api's generated code (every message of it), and a unix socket
// listening. It prints "ready" once it listens; the bench then reads its memory.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as api from "../../proto/gen/runtime/v1/api_pb.js";
import { FLOOR_BUILTINS } from "./floor-builtins.ts";

for (const m of FLOOR_BUILTINS) await import(m);
const { createServer } = await import("node:net");
// Used as berthd uses them: an answer encoded and decoded. (node:crypto, node:zlib and node:util
// are not here: berthd takes them when first used, oci-runtime/foundation/builtins.ts.)
const bytes = toBinary(api.VersionResponseSchema, create(api.VersionResponseSchema, { version: "0.1.0", runtimeName: "floor" }));
fromBinary(api.VersionResponseSchema, bytes);
const schemas = Object.keys(api).length;
const socket = process.argv[2];
if (!socket) throw new Error("usage: floor.mjs SOCKET");
createServer().listen(socket, () => process.stdout.write(`ready ${schemas}\n`));
