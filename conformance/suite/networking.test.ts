// Pod networking over the real socket: the host reaches a pod, pods reach each
// other, a port mapping answers on the host, host-network pods share the host's
// interfaces, and 20 concurrent pods leave nothing behind.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:http";
import { existsSync, readdirSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { NamespaceMode } from "../../proto/gen/runtime/v1/api_pb.js";
import { podConfig, startPodEnv, type PodEnv } from "../lib/pod.ts";

function httpGet(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path: "/index.html", timeout: 5000 }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (d: string) => { body += d; }).on("end", () => resolve(body));
    });
    req.on("timeout", () => req.destroy(new Error(`timeout talking to ${host}:${port}`)));
    req.on("error", reject);
    req.end();
  });
}

describe("networking", () => {
  let env: PodEnv;
  const web = async (name: string, port: number, over: Record<string, unknown> = {}) => {
    const c = env.b.client.runtime;
    const cfg = podConfig(over);
    const { podSandboxId } = await c.runPodSandbox({ config: cfg });
    const { containerId } = await c.createContainer({
      podSandboxId, sandboxConfig: cfg,
      config: { metadata: { name }, image: { image: env.images!.busybox }, command: ["sh", "-c", `mkdir -p /www && echo hello-${name} > /www/index.html && exec httpd -f -p ${port} -h /www`] },
    });
    await c.startContainer({ containerId });
    const ip = (await c.podSandboxStatus({ podSandboxId })).status!.network!.ip;
    return { podSandboxId, containerId, ip };
  };
  const eventually = async <T>(fn: () => Promise<T>): Promise<T> => {
    let last: unknown;
    for (let i = 0; i < 40; i++) {
      try { return await fn(); } catch (e) { last = e; await new Promise((r) => setTimeout(r, 100)); }
    }
    throw last;
  };

  before(async () => {
    env = await startPodEnv({ images: true });
    await env.b.client.image.pullImage({ image: { image: env.images!.busybox } });
  });
  after(async () => { await env.cleanup(); });

  test("the host reaches a pod's IP and two pods reach each other", async () => {
    const a = await web("a", 8080);
    const b = await web("b", 8081);
    assert.match(await eventually(() => httpGet(a.ip, 8080)), /hello-a/);
    const r = await env.b.client.runtime.execSync({ containerId: a.containerId, cmd: ["sh", "-c", `printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${b.ip} 8081`], timeout: 10n });
    assert.match(Buffer.from(r.stdout).toString(), /hello-b/, Buffer.from(r.stderr).toString());
  });

  test("a port mapping answers on the host port", async () => {
    const hostPort = 20000 + Math.floor(Math.random() * 20000);
    await web("mapped", 8082, { portMappings: [{ protocol: 0, containerPort: 8082, hostPort }] });
    assert.match(await eventually(() => httpGet(env.net.gateway, hostPort)), /hello-mapped/);
  });

  test("a host-network pod's container sees the host's interfaces", async () => {
    const c = env.b.client.runtime;
    const cfg = podConfig({ linux: { securityContext: { namespaceOptions: { network: NamespaceMode.NODE } } } });
    const { podSandboxId } = await c.runPodSandbox({ config: cfg });
    const { containerId } = await c.createContainer({
      podSandboxId, sandboxConfig: cfg,
      config: { metadata: { name: "hostnet" }, image: { image: env.images!.busybox }, command: ["sleep", "600"], linux: { securityContext: { namespaceOptions: { network: NamespaceMode.NODE } } } },
    });
    await c.startContainer({ containerId });
    const r = await c.execSync({ containerId, cmd: ["cat", "/proc/net/dev"], timeout: 10n });
    assert.ok(Buffer.from(r.stdout).toString().includes(env.net.bridge), "the test bridge is visible inside");
    await c.removePodSandbox({ podSandboxId });
  });

  test("20 pods started at once are ready with distinct IPs and leave nothing when removed", async () => {
    const c = env.b.client.runtime;
    const leasesBefore = (await env.net.leases()).length;
    const ids = await Promise.all(Array.from({ length: 20 }, () => c.runPodSandbox({ config: podConfig() }).then((r) => r.podSandboxId)));
    const ips = await Promise.all(ids.map(async (id) => (await c.podSandboxStatus({ podSandboxId: id })).status!.network!.ip));
    assert.equal(new Set(ips).size, 20);
    await Promise.all(ids.map((id) => c.removePodSandbox({ podSandboxId: id })));
    assert.equal((await env.net.leases()).length, leasesBefore, "IP leases released");
    const netns = readdirSync(`${env.b.state}/netns`);
    for (const id of ids) assert.ok(!netns.includes(id.slice(0, 32)), "netns removed");
    const mounts = await readFile("/proc/self/mountinfo", "utf8");
    for (const id of ids) assert.ok(!mounts.includes(id.slice(0, 32)), "no mounts left");
    for (const id of ids) {
      const cg = `/sys/fs/cgroup/pids/berth/berth-${id}`;
      assert.equal(existsSync(cg), false, `cgroup ${cg} removed`);
    }
  });
});
