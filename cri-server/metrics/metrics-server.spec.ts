import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BerthError } from "../../oci-runtime/foundation/errdefs.ts";
import { createLogger } from "../../oci-runtime/foundation/log.ts";
import { BerthMetrics } from "./berth-metrics.ts";
import { MetricsServer, parseHostPort } from "./metrics-server.ts";

const quiet = createLogger({}, () => {});

describe("parseHostPort", () => {
  it("splits host and port", () => {
    assert.deepEqual(parseHostPort("127.0.0.1:9090"), { host: "127.0.0.1", port: 9090 });
    assert.deepEqual(parseHostPort("[::1]:80"), { host: "::1", port: 80 });
    assert.deepEqual(parseHostPort(":9090"), { host: undefined, port: 9090 });
    for (const bad of ["9090", "host:", "h:99999", "a:b"]) assert.throws(() => parseHostPort(bad), BerthError, bad);
  });
});

describe("MetricsServer", () => {
  it("is off for an empty address", async () => {
    const s = new MetricsServer({ address: "", metrics: new BerthMetrics({ processMetrics: false }), log: quiet });
    assert.equal(await s.start(), undefined);
    await s.stop();
  });

  it("serves GET /metrics with the RPC histograms", async () => {
    const metrics = new BerthMetrics({ processMetrics: false });
    metrics.observeRpc("Version", 0, 0.001);
    const s = new MetricsServer({ address: "127.0.0.1:0", metrics, log: quiet });
    const addr = await s.start();
    try {
      const base = `http://127.0.0.1:${addr!.port}`;
      const res = await fetch(`${base}/metrics`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type") ?? "", /text\/plain/);
      const body = await res.text();
      assert.match(body, /berth_grpc_request_duration_seconds_bucket\{le="0.001",method="Version",code="OK"\} 1/);
      assert.equal((await fetch(`${base}/other`)).status, 404);
      assert.equal((await fetch(`${base}/metrics`, { method: "POST" })).status, 405);
    } finally {
      await s.stop();
    }
    await assert.rejects(fetch(`http://127.0.0.1:${addr!.port}/metrics`));
  });
});
