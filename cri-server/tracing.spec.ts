import assert from "node:assert/strict";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { after, describe, it } from "node:test";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { createLogger } from "../oci-runtime/foundation/log.ts";
import { flushTracing, shutdownTracing, startTracing, tracesUrl, tracingEnabled, withSpan } from "./tracing.ts";

const quiet = createLogger({}, () => {});

after(() => shutdownTracing());

describe("tracesUrl", () => {
  it("adds the scheme and /v1/traces when missing", () => {
    assert.equal(tracesUrl("127.0.0.1:4318"), "http://127.0.0.1:4318/v1/traces");
    assert.equal(tracesUrl("https://otel.example/"), "https://otel.example/v1/traces");
    assert.equal(tracesUrl("http://c:4318/v1/traces"), "http://c:4318/v1/traces");
  });
});

describe("tracing off", () => {
  it("loads nothing for an empty endpoint and withSpan still runs fn", async () => {
    assert.equal(await startTracing({ endpoint: "", log: quiet }), false);
    assert.equal(tracingEnabled(), false);
    const out = await withSpan("noop", { a: 1 }, async (span) => {
      assert.equal(span.isRecording(), false);
      return 42;
    });
    assert.equal(out, 42);
    await assert.rejects(withSpan("noop", {}, async () => { throw new Error("boom"); }), /boom/);
    await flushTracing();
  });

  it("an RPC through instrument() loads no OpenTelemetry module at all", async () => {
    const here = (f: string) => JSON.stringify(fileURLToPath(new URL(f, import.meta.url)));
    const script = `
      import { registerHooks } from "node:module";
      const seen = [];
      registerHooks({ resolve(spec, ctx, next) { if (spec.startsWith("@opentelemetry/")) seen.push(spec); return next(spec, ctx); } });
      const { instrument } = await import(${here("./instrument.ts")});
      const { withSpan } = await import(${here("./tracing.ts")});
      const log = { debug() {}, info() {}, warn() {}, error() {}, child() { return log; }, enabled() { return false; } };
      const out = await instrument(log, "/runtime.v1.RuntimeService/Version", "id1", () => withSpan("x", {}, async () => 7));
      process.stdout.write(JSON.stringify({ value: out.value, seen }));`;
    const { stdout } = await promisify(execFile)(process.execPath, ["--input-type=module", "-e", script], { timeout: 30_000 });
    assert.deepEqual(JSON.parse(stdout), { value: 7, seen: [] });
  });
});

interface OtlpSpan { name: string; spanId: string; parentSpanId?: string; attributes?: { key: string; value: Record<string, unknown> }[]; status?: { code?: number } }

describe("tracing on", () => {
  it("exports parent and child spans to a local OTLP/HTTP receiver", async () => {
    const bodies: { url: string; contentType: string; body: string }[] = [];
    const server = createServer(async (req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      bodies.push({ url: req.url ?? "", contentType: req.headers["content-type"] ?? "", body: Buffer.concat(chunks).toString("utf8") });
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const { port } = server.address() as AddressInfo;
      assert.equal(await startTracing({ endpoint: `127.0.0.1:${port}`, serviceName: "berth-test", log: quiet }), true);
      assert.equal(tracingEnabled(), true);
      await withSpan("cri.PullImage", { "image.ref": "busybox" }, async (parent) => {
        assert.equal(parent.isRecording(), true);
        await withSpan("image.pull", { "image.ref": "busybox" }, async () => {});
        await assert.rejects(withSpan("cni.add", {}, async () => { throw new Error("no plugin"); }));
      });
      await flushTracing();

      assert.ok(bodies.length > 0, "receiver got an export");
      assert.equal(bodies[0]!.url, "/v1/traces");
      assert.match(bodies[0]!.contentType, /json/);
      const spans: OtlpSpan[] = [];
      let service = "";
      for (const b of bodies) {
        const doc = JSON.parse(b.body) as { resourceSpans: { resource: { attributes: { key: string; value: { stringValue?: string } }[] }; scopeSpans: { spans: OtlpSpan[] }[] }[] };
        for (const rs of doc.resourceSpans) {
          service = rs.resource.attributes.find((a) => a.key === "service.name")?.value.stringValue ?? service;
          for (const ss of rs.scopeSpans) spans.push(...ss.spans);
        }
      }
      assert.equal(service, "berth-test");
      const byName = new Map(spans.map((s) => [s.name, s]));
      const parent = byName.get("cri.PullImage");
      const child = byName.get("image.pull");
      const failed = byName.get("cni.add");
      assert.ok(parent && child && failed, `spans: ${[...byName.keys()].join(", ")}`);
      assert.equal(child.parentSpanId, parent.spanId);
      assert.equal(failed.parentSpanId, parent.spanId);
      assert.equal(failed.status?.code, 2, "error status");
      assert.ok(child.attributes?.some((a) => a.key === "image.ref"));
    } finally {
      await shutdownTracing();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
    assert.equal(tracingEnabled(), false);
  });
});
