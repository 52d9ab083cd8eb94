// The node floor the bench prints beside berthd's memory: a real node process, bundled and run.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { REPO } from "../lib/berthd.ts";
import { berthdV8Flags, measureFloor } from "./floor.ts";

test("berthdV8Flags: bin/berthd's default, or BERTHD_V8_FLAGS as bin/berthd reads it", () => {
  const flags = berthdV8Flags({});
  for (const f of ["--max-semi-space-size=1", "--max-opt=1", "--optimize-for-size"]) assert.ok(flags.includes(f), `flags: ${flags.join(" ")}`);
  assert.deepEqual(berthdV8Flags({ BERTHD_V8_FLAGS: "" }), []);
  assert.deepEqual(berthdV8Flags({ BERTHD_V8_FLAGS: " --max-opt=0  --jitless " }), ["--max-opt=0", "--jitless"]);
});

test("measureFloor runs the floor program with the flags and reads its memory", async () => {
  mkdirSync(join(REPO, ".bench"), { recursive: true });
  const dir = mkdtempSync(join(REPO, ".bench", "floor-test-"));
  try {
    const floor = await measureFloor(dir, ["--max-semi-space-size=1"]);
    assert.deepEqual(floor.flags, ["--max-semi-space-size=1"]);
    assert.ok(floor.schemas > 100, `the whole CRI api was loaded: ${floor.schemas} exports`);
    assert.ok(floor.rss > 0 && floor.pss > 0 && floor.pssAnon > 0, JSON.stringify(floor));
    assert.ok(floor.pss <= floor.rss && floor.pssAnon <= floor.pss, JSON.stringify(floor));
    await assert.rejects(measureFloor(dir, ["--no-such-v8-flag-here"]), /exited/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
