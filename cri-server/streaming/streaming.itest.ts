// End to end: the streaming server with a backend built from oci-runtime/io
// against a real busybox container under conmon (runc exec, conmon attach)
// and web servers in a test netns and on the host network. Needs root.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { WebSocket } from "ws";
import { notFound } from "../../oci-runtime/foundation/errdefs.ts";
import { createLogger } from "../../oci-runtime/foundation/log.ts";
import { attachToConmon } from "../../oci-runtime/io/conmon-attach.ts";
import { forwardPort } from "../../oci-runtime/io/port-forward.ts";
import { runcExec } from "../../oci-runtime/io/runc-exec.ts";
import { RUNC, freePort, startContainer, startHttpd, testNetns, workspace, type TestContainer } from "../../conformance/lib/io-harness.ts";
import type { StreamingBackend } from "./backend.ts";
import { StreamingServer } from "./server.ts";
import { dialSpdy, openPortForwardPair, openRemoteCommandStreams, readAll, runRemoteCommand } from "../../conformance/lib/spdy-client.ts";
import type { ExecRequest } from "./tokens.ts";

const quiet = createLogger({}, () => undefined);
const V4 = ["v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"];

describe("streaming against a real container", { concurrency: false }, () => {
  let ws: Awaited<ReturnType<typeof workspace>>;
  let ctr: TestContainer;
  let server: StreamingServer;
  const netnsOf = new Map<string, string | undefined>();

  const backend: StreamingBackend = {
    exec(req, io, signal) {
      if (req.containerId !== ctr.id) throw notFound(`container "${req.containerId}" not found`);
      return runcExec({ runtimePath: RUNC, root: ctr.runcRoot, containerId: ctr.id, cmd: req.cmd, tty: req.tty, helperPath: ws.helper }, io, signal);
    },
    attach(req, io, signal) {
      if (req.containerId !== ctr.id) throw notFound(`container "${req.containerId}" not found`);
      return attachToConmon({ helperPath: ws.helper, attachSocketPath: ctr.attachSocketPath, ctlPath: ctr.ctlPath }, io, signal);
    },
    portForward(podSandboxId, port, socket, signal) {
      if (!netnsOf.has(podSandboxId)) throw notFound(`sandbox "${podSandboxId}" not found`);
      return forwardPort({ helperPath: ws.helper, netnsPath: netnsOf.get(podSandboxId), port }, socket, signal);
    },
  };

  const execReq = (cmd: string[], o: Partial<ExecRequest> = {}): ExecRequest =>
    ({ containerId: ctr.id, cmd, tty: false, stdin: false, stdout: true, stderr: true, ...o });

  before(async () => {
    ws = await workspace();
    ctr = await startContainer(ws, { args: ["sh"], tty: false, stdin: true, leaveStdinOpen: true });
    server = new StreamingServer({ backend, log: quiet });
    await server.start();
    ws.defer(() => server.stop());
  });
  after(() => ws?.cleanup());

  test("exec without a tty: separate stdout and stderr, `tty` says not a tty", async () => {
    const r = await runRemoteCommand(server.getUrl("exec", execReq(["sh", "-c", "echo out; echo err >&2; tty; true"])), { protocols: V4 });
    assert.equal(r.stdout.toString(), "out\nnot a tty\n");
    assert.equal(r.stderr.toString(), "err\n");
    assert.deepEqual(JSON.parse(r.error), { metadata: {}, status: "Success" });
  });

  test("exec with a tty: `tty` names a terminal and `stty size` follows resizes", async () => {
    const { conn } = await dialSpdy(server.getUrl("exec", execReq(["sh"], { tty: true, stdin: true, stderr: false })), { protocols: V4 });
    const s = await openRemoteCommandStreams(conn, { stdin: true, stdout: true, tty: true });
    let out = "";
    s.stdout!.on("data", (d: Buffer) => { out += d.toString(); });
    const waitFor = async (re: RegExp, send: () => void) => {
      for (let i = 0; i < 100 && !re.test(out); i++) { send(); await new Promise((r) => setTimeout(r, 100)); }
      assert.match(out, re);
    };
    s.resize!.write(JSON.stringify({ Width: 91, Height: 33 }) + "\n");
    await waitFor(/\/dev\/pts\/\d+/, () => s.stdin!.write("tty\n"));
    await waitFor(/33 91/, () => s.stdin!.write("stty size\n"));
    s.resize!.write(JSON.stringify({ Width: 120, Height: 44 }) + "\n");
    await waitFor(/44 120/, () => s.stdin!.write("stty size\n"));
    s.stdin!.write("exit 0\n");
    assert.equal(JSON.parse((await readAll(s.error)).toString()).status, "Success");
    conn.destroy();
  });

  test("exec: stdin echo through cat", async () => {
    const r = await runRemoteCommand(server.getUrl("exec", execReq(["cat"], { stdin: true })), { protocols: V4, stdin: Buffer.from("echo me\n") });
    assert.equal(r.stdout.toString(), "echo me\n");
  });

  test("exec: 10 MB in through wc -c and 10 MB out of head", async () => {
    const inn = await runRemoteCommand(server.getUrl("exec", execReq(["wc", "-c"], { stdin: true })), { protocols: V4, stdin: Buffer.alloc(10_000_000, 0x61) });
    assert.equal(inn.stdout.toString().trim(), "10000000");
    const out = await runRemoteCommand(server.getUrl("exec", execReq(["head", "-c", "10000000", "/dev/zero"])), { protocols: V4 });
    assert.equal(out.stdout.length, 10_000_000);
    assert.ok(out.stdout.every((b) => b === 0));
  });

  test("exec: a non-zero exit code comes back as a v4 NonZeroExitCode status", async () => {
    const r = await runRemoteCommand(server.getUrl("exec", execReq(["sh", "-c", "exit 42"])), { protocols: V4 });
    const st = JSON.parse(r.error);
    assert.equal(st.reason, "NonZeroExitCode");
    assert.deepEqual(st.details.causes, [{ reason: "ExitCode", message: "42" }]);
  });

  test("exec over websocket v5 with stdin close", async () => {
    const url = server.getUrl("exec", execReq(["cat"], { stdin: true })).replace(/^http/, "ws");
    const got = await new Promise<{ out: string; status: string }>((resolve, reject) => {
      const sock = new WebSocket(url, ["v5.channel.k8s.io"]);
      let out = "", status = "";
      sock.on("open", () => { sock.send(Buffer.from("\x00over websocket")); sock.send(Buffer.from([255, 0])); });
      sock.on("message", (m: Buffer) => { if (m[0] === 1) out += m.subarray(1).toString(); if (m[0] === 3) status += m.subarray(1).toString(); });
      sock.on("close", () => resolve({ out, status }));
      sock.on("error", reject);
    });
    assert.equal(got.out, "over websocket");
    assert.equal(JSON.parse(got.status).status, "Success");
  });

  test("attach to the running shell: `echo hi` answers hi", async () => {
    const { conn } = await dialSpdy(server.getUrl("attach", { containerId: ctr.id, tty: false, stdin: true, stdout: true, stderr: true }), { protocols: V4 });
    const s = await openRemoteCommandStreams(conn, { stdin: true, stdout: true, stderr: true });
    let out = "";
    s.stdout!.on("data", (d: Buffer) => { out += d.toString(); });
    s.stdin!.write("echo hi\n");
    for (let i = 0; i < 100 && !out.includes("hi\n"); i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(out, "hi\n");
    conn.destroy();
    // The shell survives the detach (conmon runs with --leave-stdin-open): a second attach works too.
    const { conn: c2 } = await dialSpdy(server.getUrl("attach", { containerId: ctr.id, tty: false, stdin: true, stdout: true, stderr: true }), { protocols: V4 });
    const s2 = await openRemoteCommandStreams(c2, { stdin: true, stdout: true, stderr: true });
    let out2 = "";
    s2.stdout!.on("data", (d: Buffer) => { out2 += d.toString(); });
    s2.stdin!.write("echo again\n");
    for (let i = 0; i < 100 && !out2.includes("again\n"); i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(out2, "again\n");
    c2.destroy();
  });

  test("attach with a tty: the shell's terminal follows resizes through conmon", async () => {
    const tty = await startContainer(ws, { args: ["sh"], tty: true, stdin: true, leaveStdinOpen: true });
    const saved = ctr;
    ctr = tty;
    try {
      const { conn } = await dialSpdy(server.getUrl("attach", { containerId: tty.id, tty: true, stdin: true, stdout: true, stderr: false }), { protocols: V4 });
      const s = await openRemoteCommandStreams(conn, { stdin: true, stdout: true, tty: true });
      let out = "";
      s.stdout!.on("data", (d: Buffer) => { out += d.toString(); });
      s.resize!.write(JSON.stringify({ Width: 77, Height: 22 }) + "\n");
      for (let i = 0; i < 100 && !/22 77/.test(out); i++) {
        s.stdin!.write("stty size\n");
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.match(out, /22 77/);
      conn.destroy();
    } finally {
      ctr = saved;
    }
  });

  test("port-forward into a netns and on the host network, several at once, refused port reported", async () => {
    const ns = await testNetns(ws);
    await startHttpd(ws, 8080, "inside the pod\n", ns.name);
    const hostPort = await freePort();
    await startHttpd(ws, hostPort, "host network\n");
    netnsOf.set("pod-ns", ns.path);
    netnsOf.set("pod-host", undefined);

    const get = async (conn: Awaited<ReturnType<typeof dialSpdy>>["conn"], port: number, id: string) => {
      const p = await openPortForwardPair(conn, port, id);
      p.data.write("GET / HTTP/1.0\r\n\r\n");
      const [body, err] = await Promise.all([readAll(p.data), readAll(p.error)]);
      return { body: body.toString(), err: err.toString() };
    };

    const { conn } = await dialSpdy(server.getUrl("portforward", { podSandboxId: "pod-ns", ports: [8080, 8081] }), { protocols: ["portforward.k8s.io"] });
    const many = await Promise.all([1, 2, 3, 4].map((i) => get(conn, 8080, String(i))));
    for (const r of many) {
      assert.match(r.body, /^HTTP\/1\.[01] 200/);
      assert.match(r.body, /inside the pod\n$/);
      assert.equal(r.err, "");
    }
    const refused = await get(conn, 8081, "5");
    assert.match(refused.err, /error forwarding port 8081 to pod pod-ns.*connection refused/);
    const after = await get(conn, 8080, "6");
    assert.match(after.body, /inside the pod\n$/);
    conn.destroy();

    const { conn: hc } = await dialSpdy(server.getUrl("portforward", { podSandboxId: "pod-host", ports: [hostPort] }), { protocols: ["portforward.k8s.io"] });
    const host = await get(hc, hostPort, "1");
    assert.match(host.body, /host network\n$/);
    hc.destroy();
  });

  test("exec in an unknown container is a Failure status naming it", async () => {
    const r = await runRemoteCommand(server.getUrl("exec", { ...execReq(["true"]), containerId: "nope" }), { protocols: V4 });
    assert.equal(JSON.parse(r.error).message, 'container "nope" not found');
  });

  test("a client that goes away kills the exec'd process", async () => {
    const { conn } = await dialSpdy(server.getUrl("exec", execReq(["sleep", "1000"])), { protocols: V4 });
    await openRemoteCommandStreams(conn, { stdout: true, stderr: true });
    conn.destroy();
    // The process disappears from the container.
    let ps = "";
    for (let i = 0; i < 100; i++) {
      const r = await runRemoteCommand(server.getUrl("exec", execReq(["sh", "-c", "ls /proc | while read p; do [ -f /proc/$p/cmdline ] && cat /proc/$p/cmdline && echo; done"])), { protocols: V4 });
      ps = r.stdout.toString();
      if (!ps.includes("sleep")) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(!ps.includes("sleep1000"), ps);
  });
});

