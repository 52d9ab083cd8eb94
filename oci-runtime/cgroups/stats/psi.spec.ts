import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parsePressure, readPressure } from "./psi.ts";

test("a pressure file parses into some and full", () => {
  assert.deepEqual(parsePressure("some avg10=1.50 avg60=0.25 avg300=0.00 total=123456\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=7\n"), {
    some: { total: 123456n, avg10: 1.5, avg60: 0.25, avg300: 0 },
    full: { total: 7n, avg10: 0, avg60: 0, avg300: 0 },
  });
  assert.deepEqual(parsePressure("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"), { some: { total: 0n, avg10: 0, avg60: 0, avg300: 0 } }, "the system-wide cpu file may lack full");
  for (const bad of ["", "garbage", "some avg10=x avg60=0 avg300=0 total=1", "some avg10=0.00 avg60=0.00 avg300=0.00 total=-1"]) assert.equal(parsePressure(bad), undefined, bad);
});

test("missing files give nothing, not zeros", async () => {
  const dir = await mkdtemp(join(tmpdir(), "psi-"));
  try {
    assert.equal(await readPressure(dir), undefined);
    await writeFile(join(dir, "io.pressure"), "some avg10=0.00 avg60=0.00 avg300=0.00 total=5\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=3\n");
    const p = await readPressure(dir);
    assert.deepEqual(Object.keys(p!), ["io"]);
    assert.equal(p!.io!.full!.total, 3n);
    assert.equal(await readPressure(join(dir, "missing")), undefined);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
