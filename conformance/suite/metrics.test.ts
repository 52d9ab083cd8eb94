// Operator surfaces: the Prometheus endpoint on [metrics] address and OTLP traces
// on [tracing] endpoint, against a real berthd and a local OTLP/HTTP receiver.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { startBerthd, type Berthd } from "../lib/berthd.ts";
import { codeOf, grpc } from "../lib/cri-client.ts";

/** A free loopback TCP port (bound and released). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

/** Span names from an OTLP/HTTP JSON export body. */
function spanNames(body: unknown): string[] {
  const out: string[] = [];
  for (const rs of (body as { resourceSpans?: { scopeSpans?: { spans?: { name: string }[] }[] }[] }).resourceSpans ?? []) {
    for (const ss of rs.scopeSpans ?? []) for (const sp of ss.spans ?? []) out.push(sp.name);
  }
  return out;
}

interface Receiver { server: Server; port: number; spans: string[]; contentTypes: string[] }

/** A minimal OTLP/HTTP receiver: records span names POSTed to /v1/traces as JSON. */
async function startReceiver(): Promise<Receiver> {
  const rx: Receiver = { server: createServer(), port: 0, spans: [], contentTypes: [] };
  rx.server.on("request", (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (req.method === "POST" && req.url === "/v1/traces") {
        rx.contentTypes.push(String(req.headers["content-type"]));
        try { rx.spans.push(...spanNames(JSON.parse(Buffer.concat(chunks).toString("utf8")))); } catch { /* not JSON */ }
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      } else {
        res.writeHead(404).end();
      }
    });
  });
  await new Promise<void>((r) => rx.server.listen(0, "127.0.0.1", r));
  rx.port = (rx.server.address() as AddressInfo).port;
  return rx;
}

async function eventually<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe("metrics and tracing", () => {
  let b: Berthd;
  let rx: Receiver;
  let metricsPort = 0;
  const scrape = async () => {
    const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    assert.equal(res.status, 200);
    return res.text();
  };

  before(async () => {
    rx = await startReceiver();
    metricsPort = await freePort();
    b = await startBerthd({ toml: `[metrics]\naddress = "127.0.0.1:${metricsPort}"\n[tracing]\nendpoint = "http://127.0.0.1:${rx.port}"\n` });
  });
  after(async () => {
    await b?.cleanup();
    await new Promise((r) => rx.server.close(r));
  });

  test("the metrics endpoint answers with RPC latency histograms by method and code", async () => {
    await b.client.runtime.version({});
    await b.client.runtime.status({});
    await assert.rejects(b.client.runtime.containerStatus({ containerId: "0".repeat(64) }), (e) => codeOf(e) === grpc.status.NOT_FOUND);
    const text = await scrape();
    assert.match(text, /# TYPE berth_grpc_request_duration_seconds histogram/);
    const bucket = (method: string) => new RegExp(`^berth_grpc_request_duration_seconds_bucket\\{[^}]*method="[^"]*${method}"[^}]*\\} [1-9]`, "m");
    assert.match(text, bucket("Version"));
    assert.match(text, bucket("Status"));
    assert.match(text, /^berth_grpc_request_duration_seconds_count\{[^}]*method="[^"]*ContainerStatus"[^}]*\} [1-9]/m);
    const statusLine = text.split("\n").find((l) => l.startsWith("berth_grpc_request_duration_seconds_count{") && l.includes("ContainerStatus"));
    assert.ok(statusLine && statusLine.includes(`code="NOT_FOUND"`), `the failed call is counted with its code: ${statusLine}`);
    const count = (t: string) => Number(/^berth_grpc_request_duration_seconds_count\{[^}]*method="[^"]*Version"[^}]*\} (\d+)/m.exec(t)?.[1] ?? 0);
    const before0 = count(text);
    await b.client.runtime.version({});
    assert.equal(count(await scrape()), before0 + 1, "each call is counted once");
  });

  test("the metrics endpoint answers 404 for other paths", async () => {
    const res = await fetch(`http://127.0.0.1:${metricsPort}/other`);
    assert.equal(res.status, 404);
    await res.arrayBuffer();
  });

  test("a span per RPC reaches the OTLP receiver", async () => {
    await b.client.runtime.version({});
    await b.client.image.listImages({});
    await eventually("cri.Version and cri.ListImages spans", () => rx.spans.includes("cri.Version") && rx.spans.includes("cri.ListImages"));
    assert.ok(rx.contentTypes.every((t) => t.startsWith("application/json")), `OTLP/HTTP JSON (${rx.contentTypes.join(", ")})`);
  });
});
