import { test } from "node:test";
import assert from "node:assert/strict";
import { formatCell, ratioOf, renderTable, Results } from "./report.ts";

test("ratio is berth over containerd only when both are measured", () => {
  const r = new Results();
  r.set("pod-start", "RunPodSandbox p50", "ms", "berth", { value: 50 });
  r.set("pod-start", "RunPodSandbox p50", "ms", "containerd", { value: 100 });
  r.set("exec", "ExecSync p50", "ms", "berth", { na: "UNIMPLEMENTED: not yet" });
  r.set("exec", "ExecSync p50", "ms", "containerd", { value: 10 });
  const [a, b] = r.toJson();
  assert.equal(a!.ratio, 0.5);
  assert.equal(a!.better, "lower");
  assert.equal(b!.ratio, null);
  assert.equal(ratioOf({ bench: "pull", metric: "x", unit: "s", cells: { berth: { value: 1 }, containerd: { value: 0 } } }), null);
});

test("throughput is better higher, counts have no direction", async () => {
  const { betterOf } = await import("./report.ts");
  assert.equal(betterOf("MB/s"), "higher");
  assert.equal(betterOf("count"), "n/a");
  assert.equal(betterOf("s"), "lower");
});

test("fill marks only the metrics a runtime has no cell for", () => {
  const r = new Results();
  r.set("pod-start", "RunPodSandbox p50", "ms", "berth", { value: 5 });
  r.fill("pod-start", [["RunPodSandbox p50", "ms"], ["CreateContainer p50", "ms"]], "berth", { na: "UNIMPLEMENTED: x" });
  assert.deepEqual(r.rows.map((x) => x.cells.berth), [{ value: 5 }, { na: "UNIMPLEMENTED: x" }]);
});

test("cells format values by unit and shorten long reasons", () => {
  assert.equal(formatCell({ value: 1.234 }, "ms"), "1.2 ms");
  assert.equal(formatCell({ value: 1.234 }, "s"), "1.23 s");
  assert.equal(formatCell({ value: 100 }, "count"), "100");
  assert.equal(formatCell({ na: "UNIMPLEMENTED: pods" }, "ms"), "n/a (UNIMPLEMENTED: pods)");
  assert.equal(formatCell({ error: "x".repeat(200) }, "ms", 20).length, 20);
  assert.equal(formatCell(undefined, "ms"), "-");
});

test("the table has a header, a rule and one line per row with the ratio", () => {
  const r = new Results();
  r.set("pull", "cold pull p50", "s", "berth", { value: 2 });
  r.set("pull", "cold pull p50", "s", "containerd", { value: 4 });
  const lines = renderTable(r.rows, ["berth", "containerd"]).trimEnd().split("\n");
  assert.equal(lines.length, 5);
  assert.match(lines[4]!, /favours berth/);
  assert.match(lines[0]!, /benchmark\s+metric\s+berth\s+containerd\s+berth\/containerd/);
  assert.match(lines[2]!, /pull\s+cold pull p50\s+2\.00 s\s+4\.00 s\s+0\.50x/);
  assert.doesNotMatch(renderTable(r.rows, ["containerd"]), /berth\/containerd/);
});

test("medians with 3 or more samples show [min..max]; a reference column appears when a row has one", () => {
  assert.equal(formatCell({ value: 2, samples: [3, 1, 2] }, "s"), "2.00 s [1.00..3.00]");
  assert.equal(formatCell({ value: 2, samples: [1, 2] }, "s"), "2.00 s");
  const r = new Results();
  r.set("pull", "cold pull median", "s", "berth", { value: 2, samples: [1, 2, 3] });
  r.set("pull", "cold pull median", "s", "containerd", { value: 4 });
  r.set("pull", "cold pull median", "s", "reference", { value: 1.5 });
  const lines = renderTable(r.rows, ["berth", "containerd"]).trimEnd().split("\n");
  assert.match(lines[0]!, /berth\s+containerd\s+reference\s+berth\/containerd/);
  assert.match(lines[2]!, /2\.00 s \[1\.00\.\.3\.00\]\s+4\.00 s\s+1\.50 s\s+0\.50x/);
  assert.ok(lines.some((l) => /^reference: /.test(l)));
  assert.ok(lines.some((l) => /min\.\.max/.test(l)));
});
