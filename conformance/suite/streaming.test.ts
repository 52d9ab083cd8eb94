// Exec, Attach and PortForward over the real socket and berth's streaming server,
// with berth's own SPDY client and the `ws` package for WebSocket.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { dialSpdy, openPortForwardPair, openRemoteCommandStreams, readAll, runRemoteCommand, UpgradeRefusedError } from "../lib/spdy-client.ts";
import { codeOf, grpc } from "../lib/cri-client.ts";
import { podConfig, startPodEnv, type PodEnv } from "../lib/pod.ts";

const V4 = ["v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"];

describe("streaming", () => {
  let env: PodEnv;
  let podId: string;
  let ctrId: string;
  let shellId: string;
  before(async () => {
    env = await startPodEnv({ images: true });
    const c = env.b.client;
    await c.image.pullImage({ image: { image: env.images!.busybox } });
    const pod = podConfig();
    podId = (await c.runtime.runPodSandbox({ config: pod })).podSandboxId;
    const mk = async (name: string, extra: Record<string, unknown>) => {
      const { containerId } = await c.runtime.createContainer({ podSandboxId: podId, sandboxConfig: pod, config: { metadata: { name }, image: { image: env.images!.busybox }, ...extra } });
      await c.runtime.startContainer({ containerId });
      return containerId;
    };
    ctrId = await mk("web", { command: ["sh", "-c", "mkdir -p /www && echo hello-from-pod > /www/index.html && exec httpd -f -p 8080 -h /www"] });
    shellId = await mk("shell", { command: ["sh"], stdin: true, tty: false });
  });
  after(async () => { await env.cleanup(); });

  test("exec without a TTY: stdout, stderr and a non-zero exit code as a v4 Status", async () => {
    const { url } = await env.b.client.runtime.exec({ containerId: ctrId, cmd: ["sh", "-c", "echo out; echo err >&2; exit 7"], stdout: true, stderr: true });
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/exec\//);
    const r = await runRemoteCommand(url, { protocols: V4, stdout: true, stderr: true });
    assert.equal(r.protocol, "v4.channel.k8s.io");
    assert.equal(r.stdout.toString(), "out\n");
    assert.equal(r.stderr.toString(), "err\n");
    const status = JSON.parse(r.error);
    assert.equal(status.status, "Failure");
    assert.equal(status.reason, "NonZeroExitCode");
    assert.equal(status.details.causes[0].message, "7");
  });

  test("exec with stdin echoes through cat and succeeds", async () => {
    const { url } = await env.b.client.runtime.exec({ containerId: ctrId, cmd: ["cat"], stdin: true, stdout: true });
    const r = await runRemoteCommand(url, { protocols: V4, stdin: Buffer.from("ping\n"), stdout: true, stderr: false });
    assert.equal(r.stdout.toString(), "ping\n");
    assert.equal(JSON.parse(r.error).status, "Success");
  });

  test("exec with a TTY sees a terminal of the requested size", async () => {
    // The client's first resize races the start of the command (as with kubectl): wait for it to land.
    const script = 'tty >/dev/null || exit 9; for i in $(seq 50); do s=$(stty size 2>/dev/null); [ -n "$s" ] && [ "$s" != "0 0" ] && break; sleep 0.1; done; echo "$s"';
    const { url } = await env.b.client.runtime.exec({ containerId: ctrId, cmd: ["sh", "-c", script], tty: true, stdout: true });
    const r = await runRemoteCommand(url, { protocols: V4, stdout: true, stderr: false, tty: true, resize: { width: 91, height: 33 } });
    assert.match(r.stdout.toString(), /33 91/);
  });

  test("a token is single-use; an unknown protocol is refused with 403", async () => {
    const { url } = await env.b.client.runtime.exec({ containerId: ctrId, cmd: ["true"], stdout: true });
    await runRemoteCommand(url, { protocols: V4, stdout: true, stderr: false });
    await assert.rejects(dialSpdy(url, { protocols: V4 }), (e) => e instanceof UpgradeRefusedError && e.statusCode === 404);
    const { url: url2 } = await env.b.client.runtime.exec({ containerId: ctrId, cmd: ["true"], stdout: true });
    await assert.rejects(dialSpdy(url2, { protocols: ["v9.nope"] }), (e) => e instanceof UpgradeRefusedError && e.statusCode === 403);
  });

  test("bad Exec/Attach/PortForward requests are refused", async () => {
    const c = env.b.client.runtime;
    await assert.rejects(c.exec({ containerId: ctrId, cmd: ["sh"], tty: true, stdout: true, stderr: true }), (e) => codeOf(e) === grpc.status.INVALID_ARGUMENT && /tty/.test((e as Error).message));
    await assert.rejects(c.exec({ containerId: ctrId, cmd: ["sh"] }), (e) => codeOf(e) === grpc.status.INVALID_ARGUMENT);
    await assert.rejects(c.exec({ containerId: "nope", cmd: ["sh"], stdout: true }), (e) => codeOf(e) === grpc.status.NOT_FOUND);
    await assert.rejects(c.attach({ containerId: "nope", stdout: true }), (e) => codeOf(e) === grpc.status.NOT_FOUND);
    await assert.rejects(c.portForward({ podSandboxId: "nope", port: [80] }), (e) => codeOf(e) === grpc.status.NOT_FOUND);
  });

  test("attach to a running shell: stdin in, stdout out", async () => {
    const { url } = await env.b.client.runtime.attach({ containerId: shellId, stdin: true, stdout: true, stderr: true });
    const { conn } = await dialSpdy(url, { protocols: V4 });
    try {
      const s = await openRemoteCommandStreams(conn, { stdin: true, stdout: true, stderr: true });
      s.stdin!.write("echo attached-$((6*7))\n");
      const got = await new Promise<string>((resolve, reject) => {
        let buf = "";
        const t = setTimeout(() => reject(new Error(`no output, got ${JSON.stringify(buf)}`)), 10_000);
        s.stdout!.on("data", (d: Buffer) => { buf += d.toString(); if (buf.includes("attached-42")) { clearTimeout(t); resolve(buf); } });
      });
      assert.match(got, /attached-42/);
    } finally {
      conn.destroy();
    }
  });

  test("port-forward reaches a web server inside the pod; a refused port is reported and the session stays up", async () => {
    const { url } = await env.b.client.runtime.portForward({ podSandboxId: podId, port: [8080, 1] });
    const { conn, protocol } = await dialSpdy(url, { protocols: ["portforward.k8s.io"] });
    assert.equal(protocol, "portforward.k8s.io");
    try {
      const bad = await openPortForwardPair(conn, 1, "1");
      bad.data.end();
      const err = (await readAll(bad.error)).toString();
      assert.match(err, /refused/);
      for (let i = 0; i < 3; i++) {
        const p = await openPortForwardPair(conn, 8080, String(10 + i));
        p.data.end("GET /index.html HTTP/1.0\r\n\r\n");
        const body = (await readAll(p.data)).toString();
        assert.match(body, /200 OK/);
        assert.match(body, /hello-from-pod/);
      }
    } finally {
      conn.destroy();
    }
  });

  test("exec over WebSocket (v5.channel.k8s.io)", async () => {
    const { url } = await env.b.client.runtime.exec({ containerId: ctrId, cmd: ["sh", "-c", "echo ws-out; exit 3"], stdout: true, stderr: true });
    const ws = new WebSocket(url.replace(/^http/, "ws"), ["v5.channel.k8s.io"]);
    const chunks: Record<number, string> = {};
    await new Promise<void>((resolve, reject) => {
      ws.on("message", (d: Buffer) => { chunks[d[0]!] = (chunks[d[0]!] ?? "") + d.subarray(1).toString(); });
      ws.on("close", () => resolve());
      ws.on("error", reject);
    });
    assert.equal(chunks[1], "ws-out\n");
    assert.equal(JSON.parse(chunks[3]!).reason, "NonZeroExitCode");
  });
});
