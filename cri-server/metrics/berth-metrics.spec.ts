import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Code } from "../../oci-runtime/foundation/errdefs.ts";
import { BerthMetrics, timed } from "./berth-metrics.ts";

describe("BerthMetrics", () => {
  it("exposes RPC counts and latency histograms by method and code", async () => {
    const m = new BerthMetrics({ processMetrics: false });
    m.observeRpc("RunPodSandbox", Code.OK, 0.2);
    m.observeRpc("RunPodSandbox", Code.OK, 0.003);
    m.observeRpc("StopContainer", Code.NOT_FOUND, 0.001);
    const text = await m.text();
    assert.match(text, /# TYPE berth_grpc_request_duration_seconds histogram/);
    assert.match(text, /berth_grpc_requests_total\{method="RunPodSandbox",code="OK"\} 2/);
    assert.match(text, /berth_grpc_requests_total\{method="StopContainer",code="NOT_FOUND"\} 1/);
    assert.match(text, /berth_grpc_request_duration_seconds_bucket\{le="0.005",method="RunPodSandbox",code="OK"\} 1/);
    assert.match(text, /berth_grpc_request_duration_seconds_bucket\{le="0.25",method="RunPodSandbox",code="OK"\} 2/);
    assert.match(text, /berth_grpc_request_duration_seconds_count\{method="RunPodSandbox",code="OK"\} 2/);
    assert.doesNotMatch(text, /nodejs_|process_cpu/, "process metrics off");
  });

  it("counts pulls, bytes, CNI and runtime latencies", async () => {
    const m = new BerthMetrics({ processMetrics: false });
    m.observeImagePull("success", 1000);
    m.observeImagePull("failure");
    m.addImagePullBytes(24);
    m.observeCni("add", 0.04);
    m.observeRuntime("create", "runc", 0.07);
    await assert.rejects(timed((s) => m.observeRuntime("start", "runc", s), async () => { throw new Error("boom"); }));
    const text = await m.text();
    assert.match(text, /berth_image_pulls_total\{result="success"\} 1/);
    assert.match(text, /berth_image_pulls_total\{result="failure"\} 1/);
    assert.match(text, /berth_image_pull_bytes_total 1024/);
    assert.match(text, /# TYPE berth_cni_duration_seconds histogram/);
    assert.match(text, /berth_cni_duration_seconds_bucket\{le="0.05",op="add"\} 1/);
    assert.match(text, /berth_runtime_duration_seconds_count\{op="create",handler="runc"\} 1/);
    assert.match(text, /berth_runtime_duration_seconds_count\{op="start",handler="runc"\} 1/, "timed observes failures too");
  });

  it("asks the integrator's callback for containers by state at scrape time", async () => {
    const m = new BerthMetrics({ processMetrics: false });
    let counts: Record<string, number> = { CONTAINER_RUNNING: 2, CONTAINER_EXITED: 1 };
    m.setContainerStates(async () => counts);
    let text = await m.text();
    assert.match(text, /berth_containers\{state="CONTAINER_RUNNING"\} 2/);
    assert.match(text, /berth_containers\{state="CONTAINER_EXITED"\} 1/);
    counts = { CONTAINER_RUNNING: 5 };
    text = await m.text();
    assert.match(text, /berth_containers\{state="CONTAINER_RUNNING"\} 5/);
    assert.doesNotMatch(text, /CONTAINER_EXITED/, "states that vanished are dropped");
  });

  it("includes process metrics by default", async () => {
    const text = await new BerthMetrics().text();
    assert.match(text, /berth_process_cpu_user_seconds_total/);
  });
});
