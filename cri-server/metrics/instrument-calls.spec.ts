import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BerthMetrics } from "./berth-metrics.ts";
import { instrumentImagePulls, instrumentNetwork, instrumentRuntime, wrapAsyncMethods } from "./instrument-calls.ts";

const ok = async () => undefined;

class FakeRuntime {
  readonly name = "runc";
  calls: string[] = [];
  async create(id: string) { this.calls.push(`create ${id}`); }
  async start(id: string) { this.calls.push(`start ${id}`); }
  async kill(id: string) { throw new Error(`no container ${id}`); }
  state = ok; delete = ok; exec = ok; update = ok; pause = ok; resume = ok; list = ok;
}

describe("wrapAsyncMethods", () => {
  it("keeps this, arguments, results and errors, and observes every call", async () => {
    const seen: [string, boolean][] = [];
    const obj = { n: 2, async twice(x: number) { return x * this.n; }, async fail() { throw new Error("boom"); } };
    wrapAsyncMethods(obj, ["twice", "fail"], "t", (m, s, good) => { assert.ok(s >= 0); seen.push([m, good]); });
    assert.equal(await obj.twice(21), 42);
    await assert.rejects(obj.fail(), /boom/);
    assert.deepEqual(seen, [["twice", true], ["fail", false]]);
  });
});

describe("instrument", () => {
  it("reports runtime, CNI and pull metrics with their labels", async () => {
    const m = new BerthMetrics({ processMetrics: false });
    const rt = instrumentRuntime(new FakeRuntime(), m);
    await rt.create("c1");
    await rt.start("c1");
    await assert.rejects(rt.kill("c1"), /no container c1/);
    assert.deepEqual(rt.calls, ["create c1", "start c1"]);
    const net = instrumentNetwork({ setUp: ok, tearDown: ok, check: ok }, m);
    await net.setUp();
    await net.tearDown();
    const images = instrumentImagePulls({ pull: async (ref: string) => ({ imageRef: `sha256:${ref}` }) }, m, (r) => (r === "sha256:a" ? 1234 : undefined));
    await images.pull("a");
    const bad = instrumentImagePulls({ pull: async () => { throw new Error("401"); } }, m, () => 1);
    await assert.rejects(bad.pull());
    const text = await m.text();
    assert.match(text, /berth_runtime_duration_seconds_count\{op="create",handler="runc"\} 1/);
    assert.match(text, /berth_runtime_duration_seconds_count\{op="kill",handler="runc"\} 1/);
    assert.match(text, /berth_cni_duration_seconds_count\{op="add"\} 1/);
    assert.match(text, /berth_cni_duration_seconds_count\{op="del"\} 1/);
    assert.match(text, /berth_image_pulls_total\{result="success"\} 1/);
    assert.match(text, /berth_image_pulls_total\{result="failure"\} 1/);
    assert.match(text, /berth_image_pull_bytes_total 1234/);
  });
});
