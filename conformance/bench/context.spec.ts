import { test } from "node:test";
import assert from "node:assert/strict";
import { BenchContext, cellOf } from "./context.ts";
import { parseBenchArgs } from "./args.ts";
import { Results } from "./report.ts";
import type { BenchEnv, Instance, Target } from "./target.ts";

test("UNIMPLEMENTED becomes n/a with the server's message; other errors become error cells", () => {
  assert.deepEqual(cellOf({ code: 12, details: "ExecSync is not implemented by berth yet" }), { na: "UNIMPLEMENTED: ExecSync is not implemented by berth yet" });
  assert.deepEqual(cellOf({ code: 4, details: "deadline exceeded" }), { error: "deadline exceeded" });
  assert.deepEqual(cellOf(new Error("boom")), { error: "boom" });
});

function fakeContext(results: Results): BenchContext {
  const target = { name: "berth", helperName: "conmon", cgroupParent: "/x", logDir: "/x", prepull: [], start: async () => instance, close: async () => {} } as Target;
  const instance = { client: {} as Instance["client"], daemonPids: () => [1], helperPids: () => [], logTail: () => "", stop: async () => {} } as Instance;
  return new BenchContext(target, instance, {} as BenchEnv, parseBenchArgs([]), results, () => {});
}

test("a benchmark that hits UNIMPLEMENTED keeps what it measured and marks the rest n/a", async () => {
  const results = new Results();
  const ctx = fakeContext(results);
  const metrics = [["a", "ms"], ["b", "ms"]] as const;
  await ctx.run("exec", metrics, 10_000, async () => {
    ctx.record("a", "ms", { value: 3 });
    throw Object.assign(new Error("12 UNIMPLEMENTED"), { code: 12, details: "b is missing" });
  });
  assert.deepEqual(results.rows.map((r) => r.cells.berth), [{ value: 3 }, { na: "UNIMPLEMENTED: b is missing" }]);
});

test("checkTime throws once the budget is spent", async () => {
  const results = new Results();
  const ctx = fakeContext(results);
  await ctx.run("list", [["x", "ms"]], -1, async () => { ctx.checkTime(); ctx.record("x", "ms", { value: 1 }); });
  assert.match((results.rows[0]!.cells.berth as { error: string }).error, /list: gave up/);
});
