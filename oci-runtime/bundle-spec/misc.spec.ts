import { test } from "node:test";
import assert from "node:assert/strict";
import { newSpec } from "./default-spec.ts";
import { compose } from "./types.ts";
import { withAnnotations, withCgroupsPath } from "./misc.ts";

test("small options set their fields; annotations merge", async () => {
  const s = await compose(newSpec("rootfs"), undefined, [withCgroupsPath("/kubepods/p/c"), withAnnotations({ a: "1" }), withAnnotations({ b: "2", a: "3" })]);
  assert.equal(s.linux!.cgroupsPath, "/kubepods/p/c");
  assert.deepEqual(s.annotations, { a: "3", b: "2" });
});
