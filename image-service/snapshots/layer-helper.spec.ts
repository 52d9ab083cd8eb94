// The binary record encoding berth-layer reads (see helper/berth-layer.c).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { encodeNode, encodeXattr, LayerHelper, LayerHelperError, MAX_XATTR_VALUE } from "./layer-helper.ts";

/** Reads fields back the way berth-layer does. */
function reader(b: Buffer) {
  let off = 0;
  return {
    op: () => String.fromCharCode(b[off++]!),
    u32: () => { const v = b.readUInt32LE(off); off += 4; return v; },
    i64: () => { const v = b.readBigInt64LE(off); off += 8; return v; },
    str: () => { const n = b.readUInt32LE(off); const s = b.subarray(off + 4, off + 4 + n); off += 4 + n; return s; },
    done: () => off === b.length,
  };
}

describe("berth-layer records", () => {
  it("encodes a node record: path, type and mode, device numbers, owner, mtime with nanoseconds", () => {
    const r = reader(encodeNode({ path: "dev/null", kind: "char", mode: 0o4666, major: 1, minor: 3, uid: 1000, gid: 6, mtime: 1_600_000_000.25 }));
    assert.equal(r.op(), "N");
    assert.equal(r.str().toString(), "dev/null");
    assert.equal(r.u32(), 0o020000 | 0o4666);
    assert.deepEqual([r.u32(), r.u32(), r.u32(), r.u32()], [1, 3, 1000, 6]);
    assert.equal(r.i64(), 1_600_000_000n);
    assert.equal(r.u32(), 250_000_000);
    assert.ok(r.done());
    const fifo = reader(encodeNode({ path: "p", kind: "fifo", mode: 0o600, major: 0, minor: 0, uid: 0, gid: 0, mtime: -5 }));
    fifo.op(); fifo.str();
    assert.equal(fifo.u32(), 0o010000 | 0o600);
    fifo.u32(); fifo.u32(); fifo.u32(); fifo.u32();
    assert.equal(fifo.i64(), -5n);
    const blk = reader(encodeNode({ path: "b", kind: "block", mode: 0o660, major: 7, minor: 0, uid: 0, gid: 0, mtime: 0 }));
    blk.op(); blk.str();
    assert.equal(blk.u32(), 0o060000 | 0o660);
  });

  it("encodes an xattr record with name and value byte-exact, newlines and all", () => {
    const name = "user.a\n\n# file: /etc/shadow\nuser.b";
    const value = Buffer.from([0, 0xff, 0x0a]);
    const r = reader(encodeXattr("a/b c", name, value));
    assert.equal(r.op(), "X");
    assert.equal(r.str().toString(), "a/b c");
    assert.equal(r.str().toString(), name, "a name is length-prefixed data, never text to parse");
    assert.deepEqual(r.str(), value);
    assert.ok(r.done());
    const root = reader(encodeXattr("", "trusted.overlay.opaque", Buffer.from("y")));
    assert.equal(root.op(), "X");
    assert.equal(root.str().length, 0, "the empty path is the layer root");
  });

  it("refuses fields it cannot encode faithfully, naming them", () => {
    assert.throws(() => encodeXattr("a\0b", "user.x", Buffer.alloc(1)), (e) => e instanceof LayerHelperError && /path contains a NUL byte/.test(e.message));
    assert.throws(() => encodeXattr("a", "user.x", Buffer.alloc(MAX_XATTR_VALUE + 1)), /value of 65537 bytes is longer than 65536/);
    assert.throws(() => encodeXattr("a", "user." + "x".repeat(251), Buffer.alloc(1)), /xattr name of 256 bytes is longer than 255/);
    assert.throws(() => encodeXattr("a/".repeat(2049), "user.x", Buffer.alloc(1)), /path of 4098 bytes is longer than 4096/);
    assert.throws(() => encodeNode({ path: "n", kind: "char", mode: 0, major: 2 ** 32, minor: 0, uid: 0, gid: 0, mtime: 0 }), /device major 4294967296 does not fit in 32 bits/);
    assert.throws(() => encodeNode({ path: "n", kind: "char", mode: 0, major: 0, minor: 0, uid: -1, gid: 0, mtime: 0 }), /uid -1 does not fit/);
  });

  it("a helper that never answers fails at the timeout and is killed; a missing helper is named", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "berth-layer-spec-"));
    try {
      // A stand-in helper that reads nothing and never answers.
      const hang = path.join(dir, "hang");
      await writeFile(hang, "#!/bin/sh\nexec sleep 30\n");
      await chmod(hang, 0o755);
      const h = new LayerHelper(hang, dir, 300);
      const t0 = Date.now();
      await assert.rejects(h.run([encodeXattr("f", "user.a", Buffer.from("1"))]), /did not answer within 300 ms/);
      assert.ok(Date.now() - t0 < 5000);
      await h.abort();
      const missing = new LayerHelper(path.join(dir, "nope"), dir, 1000);
      await assert.rejects(missing.run([encodeXattr("f", "user.a", Buffer.from("1"))]), (e) => e instanceof LayerHelperError && e.message.includes(path.join(dir, "nope")) && /ENOENT/.test(e.message));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
