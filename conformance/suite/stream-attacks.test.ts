// Hostile streaming clients, Localhost seccomp profiles and hosts.toml files against a real berthd:
// a SPDY header bomb, a client that floods frames while never reading, WebSocket and SPDY port-forwards
// to ports the PortForward request did not list, oversized and FIFO seccomp profiles, and hosts.toml
// keys berth does not support or a `header` entry the registry must see.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import zlib from "node:zlib";
import WebSocket from "ws";
import { SecurityProfile_ProfileType as ProfileType } from "../../proto/gen/runtime/v1/api_pb.js";
import { dialSpdy, openPortForwardPair, openRemoteCommandStreams, readAll } from "../lib/spdy-client.ts";
import { SPDY3_DICTIONARY } from "../../cri-server/streaming/spdy/dictionary.ts";
import { GoawayStatus, pingFrame, synStreamFrame } from "../../cri-server/streaming/spdy/frames.ts";
import { codeOf, grpc } from "../lib/cri-client.ts";
import { podConfig, startPodEnv, type PodEnv } from "../lib/pod.ts";

const V4 = ["v4.channel.k8s.io"];
const MiB = 1024 * 1024;

/** berthd's resident memory (bin/berthd execs node, so the child's pid is berthd's). */
const rssBytes = (pid: number): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const within = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([p, new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`${what}: not within ${ms} ms`)), ms).unref())]);

describe("stream and config attacks", () => {
  let env: PodEnv;
  let pod: ReturnType<typeof podConfig>;
  let podId: string;
  let ctrId: string;
  let pid: number;
  let scratch: string;
  before(async () => {
    env = await startPodEnv({ images: true });
    pid = env.b.proc.pid!;
    scratch = await mkdtemp(join(tmpdir(), "berth-stream-attacks-"));
    const c = env.b.client;
    await c.image.pullImage({ image: { image: env.images!.busybox } });
    pod = podConfig();
    podId = (await c.runtime.runPodSandbox({ config: pod })).podSandboxId;
    const { containerId } = await c.runtime.createContainer({
      podSandboxId: podId, sandboxConfig: pod,
      config: { metadata: { name: "web" }, image: { image: env.images!.busybox }, command: ["sh", "-c", "mkdir -p /www && echo hello-from-pod > /www/index.html && exec httpd -f -p 8080 -h /www"] },
    });
    await c.runtime.startContainer({ containerId });
    ctrId = containerId;
  });
  after(async () => {
    await env.cleanup();
    await rm(scratch, { recursive: true, force: true });
  });

  /** How many `yes` processes run in the container. */
  const countYes = async (): Promise<number> => {
    const r = await env.b.client.runtime.execSync({ containerId: ctrId, cmd: ["sh", "-c", "ps -o comm | grep -cx yes || true"], timeout: 10n });
    return Number(Buffer.from(r.stdout).toString().trim());
  };

  test("a SPDY header bomb ends the session with GOAWAY naming the limit; berthd's memory stays put and it keeps serving", async (t) => {
    // 256 MiB of zeros deflated with the SPDY dictionary; the first 60 000 bytes alone inflate to ~60 MiB.
    const bomb = zlib.deflateSync(Buffer.alloc(256 * MiB), { dictionary: SPDY3_DICTIONARY, level: 9 }).subarray(0, 60_000);
    const before = rssBytes(pid);
    let peak = before;
    const sampler = setInterval(() => { peak = Math.max(peak, rssBytes(pid)); }, 20);
    try {
      const sessions = await Promise.all(Array.from({ length: 8 }, async () => {
        const { url } = await env.b.client.runtime.exec({ containerId: ctrId, cmd: ["true"], stdout: true });
        return (await dialSpdy(url, { protocols: V4 })).conn;
      }));
      const results = await within(Promise.all(sessions.map(async (conn) => {
        const goaway = once(conn, "goaway") as Promise<[number, number]>;
        const closed = once(conn, "close");
        conn.socket.write(synStreamFrame(1, 0, bomb));
        const [, status] = await goaway;
        await closed;
        return status;
      })), 15_000, "GOAWAY for every bombed session");
      assert.deepEqual(results, Array(8).fill(GoawayStatus.PROTOCOL_ERROR));
    } finally {
      clearInterval(sampler);
    }
    const grew = peak - before;
    t.diagnostic(`berthd RSS ${(before / MiB).toFixed(1)} MiB before, peak ${(peak / MiB).toFixed(1)} MiB during 8 header bombs`);
    assert.ok(grew < 64 * MiB, `berthd grew by ${(grew / MiB).toFixed(1)} MiB during 8 header bombs`);
    assert.match(env.b.stderr.join(""), /header block inflates to more than 65536 bytes/);
    // Still serving streams.
    const { url } = await env.b.client.runtime.exec({ containerId: ctrId, cmd: ["echo", "alive"], stdout: true });
    const { conn } = await dialSpdy(url, { protocols: V4 });
    try {
      const s = await openRemoteCommandStreams(conn, { stdout: true });
      assert.equal((await readAll(s.stdout!)).toString(), "alive\n");
    } finally {
      conn.destroy();
    }
  });

  test("a client that never reads while `yes` writes and it floods PINGs: berthd stays within its memory, and the exec ends with the session", async (t) => {
    const { url } = await env.b.client.runtime.exec({ containerId: ctrId, cmd: ["yes"], stdout: true });
    const { conn } = await dialSpdy(url, { protocols: V4 });
    const before = rssBytes(pid);
    let peak = before;
    const sampler = setInterval(() => { peak = Math.max(peak, rssBytes(pid)); }, 50);
    let pings = 0;
    try {
      const s = await openRemoteCommandStreams(conn, { stdout: true });
      await new Promise<void>((resolve) => s.stdout!.once("data", () => resolve()));
      conn.socket.pause(); // from now on the client reads nothing
      // Up to 1 000 000 PINGs (12 MB), each asking for a reply nobody reads; stop once berthd stops taking them.
      const batch = Buffer.concat(Array.from({ length: 10_000 }, (_, i) => pingFrame(2 * i + 1)));
      const t0 = Date.now();
      while (pings < 1_000_000 && Date.now() - t0 < 20_000) {
        pings += 10_000;
        if (!conn.socket.write(batch)) {
          const drained = await Promise.race([once(conn.socket, "drain").then(() => true), sleep(1000).then(() => false)]);
          if (!drained) break;
        }
      }
      await sleep(3000); // `yes` keeps writing meanwhile
      // The CRI socket stays responsive.
      const t1 = Date.now();
      await env.b.client.runtime.version({});
      assert.ok(Date.now() - t1 < 2000, `Version took ${Date.now() - t1} ms during the flood`);
    } finally {
      clearInterval(sampler);
      conn.destroy();
    }
    const grew = peak - before;
    t.diagnostic(`berthd RSS ${(before / MiB).toFixed(1)} MiB before, peak ${(peak / MiB).toFixed(1)} MiB; ${pings} PINGs sent before berthd stopped reading`);
    assert.ok(pings < 1_000_000, "berthd took every PING: it never stopped reading");
    // Garbage from `yes` output and the PINGs read before berthd stopped reading shows as 20-35 MiB; before the
    // outbound queue was bounded, this flood grew berthd by about 600 MiB.
    assert.ok(grew < 96 * MiB, `berthd grew by ${(grew / MiB).toFixed(1)} MiB (${pings} PINGs sent)`);
    let left = -1;
    for (let i = 0; i < 50 && left !== 0; i++) { left = await countYes(); if (left) await sleep(200); }
    assert.equal(left, 0, "`yes` still runs after the client went away");
  });

  test("a WebSocket client that never reads while `yes` writes and it floods pings: berthd stays within its memory and drops the session", async (t) => {
    const { url } = await env.b.client.runtime.exec({ containerId: ctrId, cmd: ["yes"], stdout: true });
    const ws = new WebSocket(url.replace(/^http/, "ws"), ["v5.channel.k8s.io"]);
    const closed = once(ws, "close");
    ws.on("error", () => undefined);
    await within(once(ws, "message"), 10_000, "first output");
    ws.pause(); // from now on the client reads nothing
    const before = rssBytes(pid);
    let peak = before;
    const sampler = setInterval(() => { peak = Math.max(peak, rssBytes(pid)); }, 50);
    let pings = 0;
    try {
      const t0 = Date.now();
      while (pings < 200_000 && Date.now() - t0 < 10_000 && ws.readyState === WebSocket.OPEN) {
        for (let i = 0; i < 1000; i++) ws.ping();
        pings += 1000;
        await sleep(1);
      }
      await sleep(2000);
    } finally {
      clearInterval(sampler);
    }
    const droppedByBerthd = ws.readyState !== WebSocket.OPEN;
    ws.terminate();
    await closed;
    const grew = peak - before;
    t.diagnostic(`berthd RSS ${(before / MiB).toFixed(1)} MiB before, peak ${(peak / MiB).toFixed(1)} MiB; ${pings} pings sent`);
    assert.ok(droppedByBerthd, "berthd kept a session whose pongs nobody read");
    assert.ok(grew < 64 * MiB, `berthd grew by ${(grew / MiB).toFixed(1)} MiB`);
    let left = -1;
    for (let i = 0; i < 50 && left !== 0; i++) { left = await countYes(); if (left) await sleep(200); }
    assert.equal(left, 0, "`yes` still runs after the client went away");
  });

  test("WebSocket port-forward: URL ports outside the PortForward request are refused naming the port; listed ports work", async () => {
    const { url } = await env.b.client.runtime.portForward({ podSandboxId: podId, port: [8080] });
    const refused = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const ws = new WebSocket(`${url.replace(/^http/, "ws")}?ports=22`, ["portforward.k8s.io"]);
      ws.on("unexpected-response", (_req, res) => {
        let body = "";
        res.on("data", (d: Buffer) => { body += d.toString(); });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      });
      ws.on("open", () => { ws.terminate(); reject(new Error("a port outside the request was accepted")); });
      ws.on("error", () => undefined);
    });
    assert.equal(refused.status, 403);
    assert.match(refused.body, /port 22 is not in the PortForward request \(ports 8080\)/);

    const { url: ok } = await env.b.client.runtime.portForward({ podSandboxId: podId, port: [8080] });
    const body = await within(new Promise<string>((resolve, reject) => {
      const ws = new WebSocket(`${ok.replace(/^http/, "ws")}?ports=8080`, ["portforward.k8s.io"]);
      let data = Buffer.alloc(0);
      let prefixSeen = false;
      ws.on("message", (m: Buffer) => {
        if (m[0] !== 0) return;
        if (!prefixSeen) { prefixSeen = true; ws.send(Buffer.concat([Buffer.from([0]), Buffer.from("GET /index.html HTTP/1.0\r\n\r\n")])); return; }
        data = Buffer.concat([data, m.subarray(1)]);
        if (data.includes("hello-from-pod")) { ws.close(); resolve(data.toString()); }
      });
      ws.on("error", reject);
      ws.on("unexpected-response", (_req, res) => reject(new Error(`http ${res.statusCode}`)));
    }), 15_000, "port-forward over WebSocket");
    assert.match(body, /200 OK/);
  });

  test("SPDY port-forward: a port header outside the PortForward request gets an error naming it; a listed port works in the same session", async () => {
    const { url } = await env.b.client.runtime.portForward({ podSandboxId: podId, port: [8080] });
    const { conn } = await dialSpdy(url, { protocols: ["portforward.k8s.io"] });
    try {
      const bad = await openPortForwardPair(conn, 22, "1");
      bad.data.end();
      assert.match((await readAll(bad.error)).toString(), /port 22 is not in the PortForward request \(ports 8080\)/);
      const good = await openPortForwardPair(conn, 8080, "2");
      good.data.end("GET /index.html HTTP/1.0\r\n\r\n");
      assert.match((await readAll(good.data)).toString(), /hello-from-pod/);
    } finally {
      conn.destroy();
    }
  });

  test("an Exec command with a NUL byte or an argument over 128 KiB is refused naming the argument; no URL is issued", async () => {
    const exec = (cmd: string[]) => env.b.client.runtime.exec({ containerId: ctrId, cmd, stdout: true });
    await assert.rejects(exec(["sh", "-c", "echo a\0rm -rf /"]), (e) => codeOf(e) === grpc.status.INVALID_ARGUMENT && /cmd\[2\] contains a NUL byte/.test((e as Error).message));
    await assert.rejects(exec(["echo", "x".repeat(200 * 1024)]), (e) => codeOf(e) === grpc.status.INVALID_ARGUMENT && /cmd\[1\] is 204800 bytes, the limit is 131072/.test((e as Error).message));
  });

  test("a Localhost seccomp profile over 1 MiB, or a FIFO, is refused quickly naming the path and the limit; nothing is created", async () => {
    const big = join(scratch, "big.json");
    await writeFile(big, JSON.stringify({ defaultAction: "SCMP_ACT_ALLOW", padding: "x".repeat(2 * MiB) }));
    const fifo = join(scratch, "fifo.json");
    execFileSync("mkfifo", [fifo]);
    const count = async () => (await env.b.client.runtime.listContainers({})).containers.length;
    const n0 = await count();
    const create = (path: string, name: string) => env.b.client.runtime.createContainer({
      podSandboxId: podId, sandboxConfig: pod,
      config: { metadata: { name }, image: { image: env.images!.busybox }, command: ["true"], linux: { securityContext: { seccomp: { profileType: ProfileType.Localhost, localhostRef: path } } } },
    });
    const t0 = Date.now();
    await assert.rejects(create(big, "big-profile"), (e) => codeOf(e) === grpc.status.INVALID_ARGUMENT && (e as Error).message.includes(big) && /over the limit of 1048576 bytes/.test((e as Error).message));
    await assert.rejects(create(fifo, "fifo-profile"), (e) => codeOf(e) === grpc.status.INVALID_ARGUMENT && (e as Error).message.includes(fifo) && /a fifo; a profile must be a regular file/.test((e as Error).message));
    assert.ok(Date.now() - t0 < 10_000, `took ${Date.now() - t0} ms`);
    assert.equal(await count(), n0);
  });

  test("hosts.toml: an unsupported key refuses the pull naming the file and the key", async () => {
    const dir = join(env.images!.hostsDir, "unsupported.berth.test");
    await mkdir(dir, { recursive: true });
    const file = join(dir, "hosts.toml");
    await writeFile(file, `server = "http://${env.images!.registry.address}"\n[host."http://${env.images!.registry.address}"]\n  capabilities = ["pull", "resolve"]\n  client = "/etc/berth/client.pem"\n`);
    await assert.rejects(env.b.client.image.pullImage({ image: { image: "unsupported.berth.test/berth-test/busybox:latest" } }),
      (e) => codeOf(e) === grpc.status.INVALID_ARGUMENT && (e as Error).message.includes(file) && /key "client" is not supported/.test((e as Error).message));
    await writeFile(file, `server = "http://${env.images!.registry.address}"\nmirror_of = "x"\n`);
    await assert.rejects(env.b.client.image.pullImage({ image: { image: "unsupported.berth.test/berth-test/busybox:latest" } }),
      (e) => codeOf(e) === grpc.status.INVALID_ARGUMENT && (e as Error).message.includes(file) && /unknown key "mirror_of"/.test((e as Error).message));
  });

  test("hosts.toml: dial_timeout bounds a connect that never completes", async () => {
    // A listener in a stopped process with a full accept queue: the kernel drops further SYNs, so connect() hangs.
    const child = spawn(process.execPath, ["-e", 'const s = require("net").createServer(); s.listen({ port: 0, host: "127.0.0.1", backlog: 1 }, () => console.log(s.address().port))'], { stdio: ["ignore", "pipe", "inherit"] });
    const fill: net.Socket[] = [];
    try {
      const [line] = (await within(once(child.stdout!, "data"), 10_000, "listener port")) as [Buffer];
      const port = Number(line.toString().trim());
      process.kill(child.pid!, "SIGSTOP");
      for (let i = 0; i < 4; i++) { const s = net.connect(port, "127.0.0.1"); s.on("error", () => undefined); fill.push(s); }
      await sleep(300);
      const probe = net.connect(port, "127.0.0.1");
      probe.on("error", () => undefined);
      await sleep(500);
      assert.ok(probe.connecting, "the stalled listener accepted a connection");
      probe.destroy();
      const dir = join(env.images!.hostsDir, "dial.berth.test");
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, "hosts.toml"), `server = "http://127.0.0.1:${port}"\ndial_timeout = "1s"\n`);
      const t0 = Date.now();
      // Without dial_timeout only the 60 s stall timeout (per attempt) would end it.
      await within(assert.rejects(env.b.client.image.pullImage({ image: { image: "dial.berth.test/berth-test/busybox:latest" } }),
        (e) => codeOf(e) === grpc.status.UNAVAILABLE && /connecting to 127\.0\.0\.1:\d+ took longer than the dial_timeout of 1000 ms/.test((e as Error).message)), 40_000, "the pull's failure");
      assert.ok(Date.now() - t0 < 40_000);
    } finally {
      for (const s of fill) s.destroy();
      child.kill("SIGKILL");
    }
  });

  test("hosts.toml: a `header` entry reaches the registry on every request", async () => {
    // A recording proxy in front of the loopback registry.
    const seen: { url: string; header: string | string[] | undefined }[] = [];
    const upstream = env.images!.registry.address;
    const proxy = http.createServer((req, res) => {
      seen.push({ url: req.url ?? "", header: req.headers["x-berth-test"] });
      const [host, port] = upstream.split(":");
      const out = http.request({ host, port: Number(port), path: req.url, method: req.method, headers: { ...req.headers, host: upstream } }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      out.on("error", () => res.destroy());
      req.pipe(out);
    });
    proxy.listen(0, "127.0.0.1");
    await once(proxy, "listening");
    const paddr = `127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    try {
      const dir = join(env.images!.hostsDir, "headers.berth.test");
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, "hosts.toml"), [
        `server = "http://127.0.0.1:9"`,
        `[host."http://${paddr}"]`, `  capabilities = ["pull", "resolve"]`, `  dial_timeout = "2s"`,
        `  [host."http://${paddr}".header]`, `    X-Berth-Test = ["from", "hosts.toml"]`, "",
      ].join("\n"));
      const image = "headers.berth.test/berth-test/busybox:latest";
      await env.b.client.image.pullImage({ image: { image } });
      assert.ok(seen.some((s) => s.url.includes("/manifests/")), JSON.stringify(seen));
      for (const s of seen) assert.equal(s.header, "from, hosts.toml", `${s.url} came without the header`);
      await env.b.client.image.removeImage({ image: { image } });
    } finally {
      proxy.close();
      proxy.closeAllConnections();
    }
  });
});
