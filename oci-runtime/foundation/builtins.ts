// Node built-ins berthd takes when it first uses them, not when it loads. A static ESM import
// loads a built-in with berthd's bundle, and its namespace reads every export, which runs the
// built-in's lazy getters: `import { parseArgs } from "node:util"` also loaded Node's worker,
// diff and colour modules (1.2 MB of RSS in a bare node), and node:crypto's namespace its
// webcrypto (0.7 MB). process.getBuiltinModule loads the module's own code only, at the call.
// - node:crypto: digests and keys; its first use is the first pull, or start-up when a signature
//   policy holds keys. Random octets (ids, streaming tokens) are read from /dev/urandom, the
//   kernel's CSPRNG that crypto.randomBytes draws on too: node:crypto and the OpenSSL set-up
//   behind it cost 2.6-3.0 MB of RSS in a bare node, which berthd running pods never pays.
//   (Temporary names come from foundation/unique.ts.)
// - node:zlib: layers and SPDY headers; its first use is the first pull or port-forward;
// - node:util: argv parsing at start-up and errno names, without the namespace's getters.
// Measured, a fresh berthd after start-up and one Version call, three alternating starts each:
// idle RSS 59.7-60.2 MB with these imported at load, 58.2 MB taken here.
// (conformance/bench/floor-builtins.ts lists what berthd still takes at load.)
import type * as Crypto from "node:crypto";
import { openSync, readSync } from "node:fs";
import type * as Util from "node:util";
import type * as Zlib from "node:zlib";

export const nodeCrypto = (): typeof Crypto => process.getBuiltinModule("node:crypto");
export const nodeZlib = (): typeof Zlib => process.getBuiltinModule("node:zlib");
export const nodeUtil = (): typeof Util => process.getBuiltinModule("node:util");

let urandom: number | undefined;

/**
 * `n` random octets from /dev/urandom (kept open, close-on-exec as every file Node opens); from
 * crypto.randomBytes where it cannot be opened.
 */
export function randomOctets(n: number): Buffer {
  if (urandom === undefined) {
    try { urandom = openSync("/dev/urandom", "r"); } catch { return nodeCrypto().randomBytes(n); }
  }
  const out = Buffer.allocUnsafe(n);
  for (let at = 0; at < n;) {
    const got = readSync(urandom, out, at, n - at, null);
    if (got <= 0) throw new Error(`/dev/urandom gave ${got} octets`);
    at += got;
  }
  return out;
}

/**
 * A package from node_modules, loaded (CommonJS require, synchronously) at the call: for packages
 * only a feature needs (the YAML parser, ws), which a static import would load at start-up.
 */
export const requirePackage = <T>(name: string): T => process.getBuiltinModule("node:module").createRequire(import.meta.url)(name) as T;

/** n random octets as hex: ids. */
export const randomHex = (octets: number): string => randomOctets(octets).toString("hex");

/** The hex SHA-256 of `data`. */
export const sha256Hex = (data: string | Uint8Array): string => nodeCrypto().createHash("sha256").update(data).digest("hex");
