import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { uniqueSuffix } from "./unique.ts";

test("uniqueSuffix: distinct within a process, and led by the pid", () => {
  const seen = new Set(Array.from({ length: 10_000 }, () => uniqueSuffix()));
  assert.equal(seen.size, 10_000);
  for (const s of seen) assert.match(s, new RegExp(`^${process.pid.toString(36)}-[0-9a-z]+-[0-9a-z]+$`));
});

test("uniqueSuffix: another process's first suffixes differ from this one's", () => {
  const mod = fileURLToPath(new URL("./unique.ts", import.meta.url));
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", `const { uniqueSuffix } = await import(${JSON.stringify(mod)}); console.log(uniqueSuffix(), uniqueSuffix());`], { encoding: "utf8", timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  const theirs = r.stdout.trim().split(" ");
  assert.equal(theirs.length, 2);
  for (const s of theirs) assert.ok(!s.startsWith(`${process.pid.toString(36)}-`), s);
});
