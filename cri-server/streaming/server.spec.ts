// The streaming server's protocols against a scripted backend (no containers).

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { WebSocket } from "ws";
import { createLogger } from "../../oci-runtime/foundation/log.ts";
import { fakeBackend } from "../../conformance/lib/fake-streaming-backend.ts";
import { StreamingServer, WS_MAX_MESSAGE_BYTES } from "./server.ts";
import { controlFrame } from "./spdy/frames.ts";
import { UpgradeRefusedError, dialSpdy, openPortForwardPair, openRemoteCommandStreams, readAll, runRemoteCommand } from "../../conformance/lib/spdy-client.ts";
import type { ExecRequest } from "./tokens.ts";

const quiet = createLogger({}, () => undefined);
const V4 = ["v4.channel.k8s.io"];
const execReq = (cmd: string[], o: Partial<ExecRequest> = {}): ExecRequest =>
  ({ containerId: "c1", cmd, tty: false, stdin: false, stdout: true, stderr: true, ...o });

/** A TCP server that answers "port <n>: " + what it received: at end of input, or per chunk when `eager`. */
function echoServer(eager = false): Promise<{ port: number; close(): void }> {
  return new Promise((resolve) => {
    const srv = net.createServer({ allowHalfOpen: true }, (s) => {
      const chunks: Buffer[] = [];
      const prefix = () => `port ${(srv.address() as net.AddressInfo).port}: `;
      s.on("data", (c) => eager ? s.write(prefix() + c.toString()) : chunks.push(c));
      s.on("end", () => s.end(eager ? "" : prefix() + Buffer.concat(chunks).toString()));
    });
    srv.listen(0, "127.0.0.1", () => resolve({ port: (srv.address() as net.AddressInfo).port, close: () => srv.close() }));
  });
}

async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe("streaming server (spdy)", () => {
  const backend = fakeBackend();
  const server = new StreamingServer({ backend, log: quiet });
  before(() => server.start());
  after(() => server.stop());

  test("exec v4: stdout, stderr and a Success status", async () => {
    const r = await runRemoteCommand(server.getUrl("exec", execReq(["echo", "hello"])), { protocols: V4 });
    assert.equal(r.protocol, "v4.channel.k8s.io");
    assert.equal(r.stdout.toString(), "hello\n");
    assert.deepEqual(JSON.parse(r.error), { metadata: {}, status: "Success" });
    const e = await runRemoteCommand(server.getUrl("exec", execReq(["stderr", "oops"])), { protocols: V4 });
    assert.equal(e.stderr.toString(), "oops\n");
  });

  test("exec: stdin is echoed and its half-close ends the command", async () => {
    const r = await runRemoteCommand(server.getUrl("exec", execReq(["cat"], { stdin: true })), { protocols: V4, stdin: Buffer.from("ping\n") });
    assert.equal(r.stdout.toString(), "ping\n");
  });

  test("exec v4: a non-zero exit code is a NonZeroExitCode status with the code as cause", async () => {
    const r = await runRemoteCommand(server.getUrl("exec", execReq(["exit", "7"])), { protocols: V4 });
    const st = JSON.parse(r.error);
    assert.equal(st.status, "Failure");
    assert.equal(st.reason, "NonZeroExitCode");
    assert.deepEqual(st.details.causes, [{ reason: "ExitCode", message: "7" }]);
  });

  test("older protocols get plain error text, and nothing on success", async () => {
    const bad = await runRemoteCommand(server.getUrl("exec", execReq(["exit", "3"])), { protocols: ["v2.channel.k8s.io"] });
    assert.equal(bad.protocol, "v2.channel.k8s.io");
    assert.equal(bad.error, "command terminated with non-zero exit code: exit status 3");
    const ok = await runRemoteCommand(server.getUrl("exec", execReq(["echo", "x"])), { protocols: ["channel.k8s.io"] });
    assert.equal(ok.error, "");
  });

  test("a backend error reaches the client as a Failure status with its message", async () => {
    const r = await runRemoteCommand(server.getUrl("exec", execReq(["missing"])), { protocols: V4 });
    const st = JSON.parse(r.error);
    assert.equal(st.status, "Failure");
    assert.equal(st.message, 'container "c1" not found');
  });

  test("10 MB flow both ways", async () => {
    const out = await runRemoteCommand(server.getUrl("exec", execReq(["zeros", "10000000"])), { protocols: V4 });
    assert.equal(out.stdout.length, 10_000_000);
    const inn = await runRemoteCommand(server.getUrl("exec", execReq(["wc"], { stdin: true })), { protocols: V4, stdin: Buffer.alloc(10_000_000, 1) });
    assert.equal(inn.stdout.toString(), "10000000\n");
  });

  test("tty: resize events reach the backend", async () => {
    const { conn } = await dialSpdy(server.getUrl("exec", execReq(["resize", "2"], { tty: true, stderr: false })), { protocols: V4 });
    const s = await openRemoteCommandStreams(conn, { stdout: true, tty: true });
    assert.equal(s.stderr, undefined);
    s.resize!.write(JSON.stringify({ Width: 80, Height: 24 }) + "\n");
    s.resize!.write(JSON.stringify({ Width: 132, Height: 43 }) + "\n");
    assert.equal((await readAll(s.stdout!)).toString(), "24 80\n43 132\n");
    conn.destroy();
  });

  test("a used, unknown or wrong-kind token is 404", async () => {
    const url = server.getUrl("exec", execReq(["echo", "once"]));
    await runRemoteCommand(url, { protocols: V4 });
    await assert.rejects(dialSpdy(url, { protocols: V4 }), (e: unknown) => e instanceof UpgradeRefusedError && e.statusCode === 404);
    await assert.rejects(dialSpdy(`${server.baseUrl}/exec/nosuchtoken`, { protocols: V4 }), (e: unknown) => e instanceof UpgradeRefusedError && e.statusCode === 404);
    const attachUrl = server.getUrl("exec", execReq(["echo"])).replace("/exec/", "/attach/");
    await assert.rejects(dialSpdy(attachUrl, { protocols: V4 }), (e: unknown) => e instanceof UpgradeRefusedError && e.statusCode === 404);
  });

  test("no common protocol version is 403 naming the accepted versions", async () => {
    const url = server.getUrl("exec", execReq(["echo"]));
    await assert.rejects(dialSpdy(url, { protocols: ["v9.channel.k8s.io"] }), (e: unknown) => {
      assert.ok(e instanceof UpgradeRefusedError);
      assert.equal(e.statusCode, 403);
      assert.match(e.body, /v4\.channel\.k8s\.io/);
      assert.match(String(e.headers["x-accepted-stream-protocol-versions"]), /channel\.k8s\.io/);
      return true;
    });
    const pf = server.getUrl("portforward", { podSandboxId: "p1", ports: [] });
    await assert.rejects(dialSpdy(pf, { protocols: V4 }), (e: unknown) => e instanceof UpgradeRefusedError && e.statusCode === 403);
  });

  test("a request without upgrade headers is 400", async () => {
    const url = new URL(server.getUrl("exec", execReq(["echo"])));
    const status = await new Promise<number>((resolve, reject) => {
      http.get(url, (res) => { res.resume(); resolve(res.statusCode ?? 0); }).on("error", reject);
    });
    assert.equal(status, 400);
  });

  test("a malformed frame closes only its own session", async () => {
    const { conn: good } = await dialSpdy(server.getUrl("exec", execReq(["cat"], { stdin: true })), { protocols: V4 });
    const g = await openRemoteCommandStreams(good, { stdin: true, stdout: true, stderr: true });
    const { conn: bad } = await dialSpdy(server.getUrl("exec", execReq(["cat"], { stdin: true })), { protocols: V4 });
    const badClosed = new Promise((r) => bad.once("close", r));
    // A SPDY/2 control frame: a protocol error for a SPDY/3.1 session.
    const frame = controlFrame(4, 0, Buffer.from([0, 0, 0, 0]));
    frame.writeUInt16BE(0x8002, 0);
    bad.socket.write(frame);
    await badClosed;
    g.stdin!.end("still alive\n");
    assert.equal((await readAll(g.stdout!)).toString(), "still alive\n");
    assert.equal(JSON.parse((await readAll(g.error)).toString()).status, "Success");
    good.destroy();
  });

  test("parallel sessions do not block each other", async () => {
    const { conn: hung } = await dialSpdy(server.getUrl("exec", execReq(["hang"])), { protocols: V4 });
    await openRemoteCommandStreams(hung, { stdout: true, stderr: true });
    const runs = Array.from({ length: 8 }, (_, i) =>
      runRemoteCommand(server.getUrl("exec", execReq(["cat"], { stdin: true })), { protocols: V4, stdin: Buffer.from(`n${i}`) }));
    const results = await Promise.all(runs);
    assert.deepEqual(results.map((r) => r.stdout.toString()), Array.from({ length: 8 }, (_, i) => `n${i}`));
    hung.destroy();
  });

  test("port-forward: several connections at once, a refused port is reported and the session stays up", async () => {
    const echo = await echoServer();
    const refused = await closedPort();
    try {
      const { conn, protocol } = await dialSpdy(server.getUrl("portforward", { podSandboxId: "p1", ports: [echo.port] }), { protocols: ["portforward.k8s.io"] });
      assert.equal(protocol, "portforward.k8s.io");
      const pairs = await Promise.all([1, 2, 3].map((i) => openPortForwardPair(conn, echo.port, String(i))));
      pairs.forEach((p, i) => p.data.end(`hello ${i}`));
      const answers = await Promise.all(pairs.map((p) => readAll(p.data)));
      assert.deepEqual(answers.map(String), [0, 1, 2].map((i) => `port ${echo.port}: hello ${i}`));
      const bad = await openPortForwardPair(conn, refused, "4");
      const msg = (await readAll(bad.error)).toString();
      assert.match(msg, new RegExp(`error forwarding port ${refused} to pod p1`));
      // Data sent towards the refused port is discarded without stalling the session.
      bad.data.write(Buffer.alloc(1024 * 1024));
      const again = await openPortForwardPair(conn, echo.port, "5");
      again.data.end("after");
      assert.equal((await readAll(again.data)).toString(), `port ${echo.port}: after`);
      conn.destroy();
    } finally {
      echo.close();
    }
  });

  test("an idle session is closed and its command aborted", async () => {
    const idle = new StreamingServer({ backend, log: quiet, idleTimeoutMs: 300 });
    await idle.start();
    try {
      const { conn } = await dialSpdy(idle.getUrl("exec", execReq(["hang"])), { protocols: V4 });
      await openRemoteCommandStreams(conn, { stdout: true, stderr: true });
      await new Promise((r) => conn.once("close", r));
    } finally {
      await idle.stop();
    }
  });
});

describe("streaming server (tls)", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "berth-stream-tls-"));
  const cert = path.join(dir, "cert.pem"), key = path.join(dir, "key.pem");
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert], { stdio: "ignore" });
  const server = new StreamingServer({ backend: fakeBackend(), log: quiet, tlsCertFile: cert, tlsKeyFile: key });
  before(() => server.start());
  after(async () => { await server.stop(); rmSync(dir, { recursive: true, force: true }); });

  test("serves https URLs with the configured certificate", async () => {
    const url = server.getUrl("exec", execReq(["echo", "secure"]));
    assert.match(url, /^https:\/\/127\.0\.0\.1:\d+\/exec\//);
    const { readFileSync } = await import("node:fs");
    const r = await runRemoteCommand(url, { protocols: V4, ca: readFileSync(cert) });
    assert.equal(r.stdout.toString(), "secure\n");
  });
});

/** Collects a WebSocket session's messages by channel until it closes. */
function wsSession(url: string, protocols: string[], onOpen: (ws: WebSocket) => void): Promise<{ protocol: string; channels: Map<number, Buffer>; raw: (Buffer | string)[] }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace(/^http/, "ws"), protocols);
    const channels = new Map<number, Buffer>();
    const raw: (Buffer | string)[] = [];
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      raw.push(isBinary ? data : data.toString());
      const [ch, payload] = isBinary ? [data[0]!, data.subarray(1)] : [data.toString().charCodeAt(0) - 48, Buffer.from(data.toString().slice(1), "base64")];
      channels.set(ch, Buffer.concat([channels.get(ch) ?? Buffer.alloc(0), payload]));
    });
    ws.on("open", () => onOpen(ws));
    ws.on("close", () => resolve({ protocol: ws.protocol, channels, raw }));
    ws.on("unexpected-response", (_req, res) => reject(new Error(`http ${res.statusCode}`)));
    ws.on("error", reject);
  });
}

describe("streaming server (websocket)", () => {
  const server = new StreamingServer({ backend: fakeBackend(), log: quiet });
  before(() => server.start());
  after(() => server.stop());

  test("v5: stdin, the close signal for stdin, stdout and a Success status", async () => {
    const r = await wsSession(server.getUrl("exec", execReq(["cat"], { stdin: true })), ["v5.channel.k8s.io", "v4.channel.k8s.io"], (ws) => {
      ws.send(Buffer.from([0, ...Buffer.from("over ws")]));
      ws.send(Buffer.from([255, 0]));
    });
    assert.equal(r.protocol, "v5.channel.k8s.io");
    assert.equal(r.channels.get(1)?.toString(), "over ws");
    assert.deepEqual(JSON.parse(r.channels.get(3)!.toString()), { metadata: {}, status: "Success" });
  });

  test("v4 base64: text frames both ways and the exit code status", async () => {
    const r = await wsSession(server.getUrl("exec", execReq(["exit", "2"])), ["v4.base64.channel.k8s.io"], () => undefined);
    assert.equal(r.protocol, "v4.base64.channel.k8s.io");
    assert.ok(r.raw.every((m) => typeof m === "string"));
    assert.equal(JSON.parse(r.channels.get(3)!.toString()).reason, "NonZeroExitCode");
  });

  test("channel.k8s.io: stderr channel and tty resize", async () => {
    const e = await wsSession(server.getUrl("exec", execReq(["stderr", "bad"])), ["channel.k8s.io"], () => undefined);
    assert.equal(e.channels.get(2)?.toString(), "bad\n");
    const r = await wsSession(server.getUrl("exec", execReq(["resize", "1"], { tty: true, stderr: false })), ["v4.channel.k8s.io"], (ws) => {
      ws.send(Buffer.concat([Buffer.from([4]), Buffer.from(JSON.stringify({ Width: 100, Height: 50 }))]));
    });
    assert.equal(r.channels.get(1)?.toString(), "50 100\n");
  });

  test("a malformed message closes only its own websocket session", async () => {
    let other: WebSocket | undefined;
    const survivor = wsSession(server.getUrl("exec", execReq(["cat"], { stdin: true })), ["v5.channel.k8s.io"], (w) => { other = w; });
    const bad = await wsSession(server.getUrl("exec", execReq(["cat"], { stdin: true })), ["v4.base64.channel.k8s.io"], (w) => {
      w.send(Buffer.from([0, 1, 2]), { binary: true });
    });
    assert.equal(bad.channels.size, 0);
    for (let i = 0; i < 100 && !other; i++) await new Promise((r) => setTimeout(r, 10));
    other!.send(Buffer.from("\x00still here"));
    other!.send(Buffer.from([255, 0]));
    assert.equal((await survivor).channels.get(1)?.toString(), "still here");
  });

  test("a message over 1 MiB closes the session with 1009 (message too big)", async () => {
    const code = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(server.getUrl("exec", execReq(["cat"], { stdin: true })).replace(/^http/, "ws"), ["v5.channel.k8s.io"]);
      ws.on("open", () => ws.send(Buffer.concat([Buffer.from([0]), Buffer.alloc(WS_MAX_MESSAGE_BYTES)])));
      ws.on("close", (c: number) => resolve(c));
      ws.on("error", () => undefined);
      ws.on("unexpected-response", () => reject(new Error("upgrade refused")));
    });
    assert.equal(code, 1009);
  });

  test("an unsupported subprotocol is 403 and a reused token 404", async () => {
    const url = server.getUrl("exec", execReq(["echo"]));
    await assert.rejects(wsSession(url, ["v9.channel.k8s.io"], () => undefined), /http 403/);
    await assert.rejects(wsSession(url, ["v4.channel.k8s.io"], () => undefined), /http 404/);
  });

  test("port-forward: URL ports outside the PortForward request are refused; an empty request allows any", async () => {
    const url = server.getUrl("portforward", { podSandboxId: "p1", ports: [8080, 8081] });
    await assert.rejects(wsSession(`${url}?ports=8080,22`, ["v4.channel.k8s.io"], () => undefined), /http 403/);
    const many = server.getUrl("portforward", { podSandboxId: "p1", ports: [] });
    await assert.rejects(wsSession(`${many}?ports=${Array.from({ length: 65 }, (_, i) => 1000 + i).join(",")}`, ["v4.channel.k8s.io"], () => undefined), /http 400/);
    const bad = server.getUrl("portforward", { podSandboxId: "p1", ports: [] });
    await assert.rejects(wsSession(`${bad}?ports=0`, ["v4.channel.k8s.io"], () => undefined), /http 400/);
    const echo = await echoServer(true);
    try {
      const any = server.getUrl("portforward", { podSandboxId: "p1", ports: [] });
      const r = await wsSession(`${any}?ports=${echo.port}`, ["v4.channel.k8s.io"], (ws) => {
        ws.send(Buffer.concat([Buffer.from([0]), Buffer.from("open")]));
        ws.on("message", (m: Buffer) => { if (m[0] === 0 && m.toString().includes("open")) ws.close(); });
      });
      assert.match(r.channels.get(0)!.subarray(2).toString(), /open/);
    } finally {
      echo.close();
    }
  });

  test("port-forward: the port comes first on both channels, then the data", async () => {
    const echo = await echoServer(true);
    try {
      const url = server.getUrl("portforward", { podSandboxId: "p1", ports: [echo.port] });
      const r = await wsSession(url, ["v4.channel.k8s.io"], (ws) => {
        ws.send(Buffer.concat([Buffer.from([0]), Buffer.from("via ws")]));
        ws.on("message", (m: Buffer) => { if (m[0] === 0 && m.toString().includes("via ws")) ws.close(); });
      });
      const portLE = Buffer.alloc(2);
      portLE.writeUInt16LE(echo.port);
      const data = r.channels.get(0)!;
      assert.deepEqual(data.subarray(0, 2), portLE);
      assert.deepEqual(r.channels.get(1)!.subarray(0, 2), portLE);
      assert.equal(data.subarray(2).toString(), `port ${echo.port}: via ws`);
    } finally {
      echo.close();
    }
  });
});
