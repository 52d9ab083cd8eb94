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

test("uniqueSuffix: another berthd's suffixes differ, with another pid or the same", async () => {
  const mod = fileURLToPath(new URL("./unique.ts", import.meta.url));
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", `const { uniqueSuffix } = await import(${JSON.stringify(mod)}); console.log(uniqueSuffix(), uniqueSuffix());`], { encoding: "utf8", timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  const theirs = r.stdout.trim().split(" ");
  assert.equal(theirs.length, 2);
  for (const s of theirs) assert.ok(!s.startsWith(`${process.pid.toString(36)}-`), s);
  // The same pid and the same millisecond: fresh instances of the module (as berthds started
  // one after another with one pid) still start from different prefixes.
  const prefixes = new Set<string>();
  for (let i = 0; i < 20; i++) {
    const { uniqueSuffix: fresh } = await import(`./unique.ts?instance=${i}`) as typeof import("./unique.ts");
    const first = fresh();
    assert.ok(first.endsWith("-1"), first);
    prefixes.add(first.slice(0, -2));
  }
  assert.equal(prefixes.size, 20, `${prefixes.size} distinct prefixes of 20`);
});
