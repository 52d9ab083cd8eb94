import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BerthError, Code } from "../foundation/errdefs.ts";
import { binaryStatus } from "../foundation/executable.ts";
import { RuntimeHandlers } from "./handlers.ts";

test("binaryStatus finds names on PATH and says why a binary cannot run", () => {
  const dir = mkdtempSync(join(tmpdir(), "berth-handlers-"));
  try {
    writeFileSync(join(dir, "rt"), "#!/bin/sh\n", { mode: 0o755 });
    writeFileSync(join(dir, "plain"), "x", { mode: 0o644 });
    assert.deepEqual(binaryStatus("rt", `/nonexistent:${dir}`), { ok: true, path: join(dir, "rt") });
    assert.deepEqual(binaryStatus(join(dir, "rt")), { ok: true, path: join(dir, "rt") });
    assert.equal(binaryStatus(join(dir, "missing")).problem, "does not exist");
    assert.equal(binaryStatus(dir).problem, "is not a regular file");
    assert.match(binaryStatus("missing", dir).problem!, /is not on PATH/);
    const handlers = RuntimeHandlers.fromConfig({ ok: { binary: join(dir, "rt"), root: dir }, gone: { binary: join(dir, "missing"), root: dir } }, "ok");
    assert.equal(handlers.usable("").name, "ok");
    assert.throws(() => handlers.usable("gone"), (e) => e instanceof BerthError && e.code === Code.FAILED_PRECONDITION
      && e.message === `runtime handler "gone": its binary ${join(dir, "missing")} does not exist`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
