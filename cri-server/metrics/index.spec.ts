import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { createLogger } from "../../oci-runtime/foundation/log.ts";
import { NoopMetrics, startMetrics } from "./index.ts";

const quiet = createLogger({}, () => {});
const run = promisify(execFile);
const INDEX = fileURLToPath(new URL("./index.ts", import.meta.url));

/** In a fresh node: startMetrics(address), then whether prom-client's modules were loaded. */
async function loadsPromClient(address: string): Promise<{ enabled: boolean; promModules: number }> {
  const script = `
    import { createRequire } from "node:module";
    const { startMetrics } = await import(${JSON.stringify(INDEX)});
    const m = await startMetrics({ address: ${JSON.stringify(address)}, log: { info() {}, warn() {}, error() {}, debug() {}, child() { return this; }, enabled() { return false; } } });
    const loaded = Object.keys(createRequire(import.meta.url).cache).filter((k) => k.includes("/prom-client/")).length;
    await m.stop();
    process.stdout.write(JSON.stringify({ enabled: m.enabled, promModules: loaded }));`;
  const { stdout } = await run(process.execPath, ["--input-type=module", "-e", script], { timeout: 30_000 });
  return JSON.parse(stdout) as { enabled: boolean; promModules: number };
}

describe("startMetrics", () => {
  it("with no address is a no-op sink and loads no prom-client", async () => {
    const m = await startMetrics({ address: "", log: quiet });
    assert.equal(m.enabled, false);
    assert.equal(m.metrics.constructor, NoopMetrics);
    m.metrics.observeRpc("Version", 0, 0.001);
    m.metrics.setContainerStates(() => ({ running: 1 }));
    await m.stop();
    assert.deepEqual(await loadsPromClient(""), { enabled: false, promModules: 0 });
  });

  it("with an address loads prom-client and serves /metrics until stopped", async () => {
    const m = await startMetrics({ address: "127.0.0.1:0", log: quiet });
    assert.equal(m.enabled, true);
    m.metrics.observeRpc("Version", 0, 0.001);
    const probe = await loadsPromClient("127.0.0.1:0");
    assert.equal(probe.enabled, true);
    assert.ok(probe.promModules > 0, "prom-client loaded");
    await m.stop();
  });

  it("refuses a bad address naming it", async () => {
    await assert.rejects(startMetrics({ address: "nonsense", log: quiet }), /metrics address "nonsense" is not host:port/);
  });
});
