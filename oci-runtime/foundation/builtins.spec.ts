import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { randomHex, randomOctets, sha256Hex } from "./builtins.ts";

test("randomHex and sha256Hex", () => {
  assert.match(randomHex(6), /^[0-9a-f]{12}$/);
  assert.notEqual(randomHex(32), randomHex(32));
  assert.equal(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  assert.equal(sha256Hex(new Uint8Array([0x61, 0x62, 0x63])), sha256Hex("abc"));
});

test("randomOctets: the asked length, different every time, over a read of any size", () => {
  for (const n of [0, 1, 24, 32, 4096, 100_000]) assert.equal(randomOctets(n).length, n);
  const seen = new Set<string>();
  for (let i = 0; i < 1000; i++) seen.add(randomOctets(16).toString("hex"));
  assert.equal(seen.size, 1000);
  // Not constant octets: over 64 KiB every octet value shows up.
  assert.equal(new Set(randomOctets(65_536)).size, 256);
});

test("the module loads no built-in; each is loaded at its first use", () => {
  // A fresh node: what importing the module loads, and what its first calls load.
  const mod = fileURLToPath(new URL("./builtins.ts", import.meta.url));
  const program = `
    const has = (m) => process.moduleLoadList.includes("NativeModule " + m);
    const b = await import(${JSON.stringify(mod)});
    const seen = { crypto: has("crypto"), zlib: has("zlib"), worker: has("worker_threads") };
    b.randomHex(2);
    b.randomOctets(24);
    seen.cryptoAfterRandom = has("crypto");
    b.sha256Hex("x");
    seen.cryptoAfter = has("crypto");
    b.nodeZlib().createGunzip().close();
    seen.zlibAfter = has("zlib");
    b.nodeUtil().parseArgs({ args: [], options: {} });
    seen.workerAfter = has("worker_threads");
    console.log(JSON.stringify(seen));`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", program], { encoding: "utf8", timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { crypto: false, zlib: false, worker: false, cryptoAfterRandom: false, cryptoAfter: true, zlibAfter: true, workerAfter: false });
});
