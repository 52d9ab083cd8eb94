// Node built-ins berthd takes when it first uses them, not when it loads. A static ESM import
// loads a built-in with berthd's bundle, and its namespace reads every export, which runs the
// built-in's lazy getters: `import { parseArgs } from "node:util"` also loaded Node's worker,
// diff and colour modules (1.2 MB of RSS in a bare node), and node:crypto's namespace its
// webcrypto (0.7 MB). process.getBuiltinModule loads the module's own code only, at the call.
// - node:crypto: ids, digests, keys; its first use is the first pod or pull, or start-up when a
//   signature policy holds keys (temporary names come from foundation/unique.ts, so the runtime
//   probe at start-up does not load it);
// - node:zlib: layers and SPDY headers; its first use is the first pull or port-forward;
// - node:util: argv parsing at start-up and errno names, without the namespace's getters.
// Measured, a fresh berthd after start-up and one Version call, three alternating starts each:
// idle RSS 59.7-60.2 MB with these imported at load, 58.2 MB taken here.
// (conformance/bench/floor-builtins.ts lists what berthd still takes at load.)
import type * as Crypto from "node:crypto";
import type * as Util from "node:util";
import type * as Zlib from "node:zlib";

export const nodeCrypto = (): typeof Crypto => process.getBuiltinModule("node:crypto");
export const nodeZlib = (): typeof Zlib => process.getBuiltinModule("node:zlib");
export const nodeUtil = (): typeof Util => process.getBuiltinModule("node:util");

/** n random octets as hex: ids and temporary file names. */
export const randomHex = (octets: number): string => nodeCrypto().randomBytes(octets).toString("hex");

/** The hex SHA-256 of `data`. */
export const sha256Hex = (data: string | Uint8Array): string => nodeCrypto().createHash("sha256").update(data).digest("hex");
