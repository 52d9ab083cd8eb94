// What berthd leaves unloaded until it is used, over the real socket: with the default config no
// streaming server listens (and no metrics endpoint) until the first Exec; that Exec starts it
// and works, and later Execs reuse the same server. The processes that unpack large layers run
// only around a pull: a pull starts them, and they end once idle.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { availableParallelism } from "node:os";
import { pushLayerImage } from "../../hack/registry/build-images.ts";
import { childProcesses } from "../lib/procs.ts";
import { runRemoteCommand } from "../lib/spdy-client.ts";
import { podConfig, startPodEnv, type PodEnv } from "../lib/pod.ts";

/** TCP ports berthd (pid) listens on: listening sockets in its netns whose inode is one of its fds. */
function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch { /* closed meanwhile */ }
  }
  const ports: number[] = [];
  for (const table of ["tcp", "tcp6"]) {
    for (const line of readFileSync(`/proc/${pid}/net/${table}`, "utf8").split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== "0A") continue; // 0A: LISTEN
      if (inodes.has(f[9]!)) ports.push(parseInt(f[1]!.split(":")[1]!, 16));
    }
  }
  return ports;
}

/** berthd's layer unpack processes: its children running unpack-worker. */
function unpackProcesses(pid: number): number {
  return childProcesses([pid]).filter((c) => {
    try { return readFileSync(`/proc/${c.pid}/cmdline`, "utf8").includes("unpack-worker"); } catch { return false; }
  }).length;
}

async function until(what: string, ok: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("lazy loading", () => {
  let env: PodEnv;
  let ctrId: string;
  before(async () => {
    env = await startPodEnv({ images: true });
    const c = env.b.client;
    await c.image.pullImage({ image: { image: env.images!.busybox } });
    const pod = podConfig();
    const podId = (await c.runtime.runPodSandbox({ config: pod })).podSandboxId;
    const { containerId } = await c.runtime.createContainer({ podSandboxId: podId, sandboxConfig: pod, config: { metadata: { name: "sleep" }, image: { image: env.images!.busybox }, command: ["sleep", "3600"] } });
    await c.runtime.startContainer({ containerId });
    ctrId = containerId;
  });
  after(async () => { await env?.cleanup(); });

  test("no streaming server or metrics endpoint until the first Exec, which starts it once", async () => {
    const pid = env.b.proc.pid!;
    assert.deepEqual(listeningPorts(pid), [], "berthd listens on no TCP port before any Exec");
    const log = () => env.b.stderr.join("");
    assert.doesNotMatch(log(), /streaming server listening/);
    assert.doesNotMatch(log(), /metrics endpoint listening/);

    const { url } = await env.b.client.runtime.exec({ containerId: ctrId, cmd: ["echo", "lazy"], stdout: true });
    const port = Number(/^http:\/\/127\.0\.0\.1:(\d+)\/exec\//.exec(url)?.[1]);
    assert.ok(port > 0, url);
    assert.deepEqual(listeningPorts(pid), [port], "the first Exec started the streaming server on the URL's port");
    const r = await runRemoteCommand(url, { protocols: ["v4.channel.k8s.io"], stdout: true, stderr: false });
    assert.equal(r.stdout.toString(), "lazy\n");

    const second = await env.b.client.runtime.exec({ containerId: ctrId, cmd: ["true"], stdout: true });
    assert.equal(new URL(second.url).port, String(port), "later Execs reuse the same server");
    assert.deepEqual(listeningPorts(pid), [port]);
    assert.equal(log().match(/streaming server listening/g)?.length, 1);
  });

  // With one CPU berthd unpacks every layer itself (image-service.ts): nothing to see there.
  test("large layers are unpacked in processes that end when idle", { skip: availableParallelism() <= 1 ? "one CPU: berthd unpacks every layer itself" : false }, async () => {
    const pid = env.b.proc.pid!;
    // busybox's small layer (before()) was unpacked by berthd itself.
    assert.equal(unpackProcesses(pid), 0);
    // Layers of 8 MiB and more (compressed) go to an unpack process; this one is 9 MiB of random bytes.
    const { ref } = await pushLayerImage({ address: env.images!.registry.address }, "lazy/workers", [
      { name: "data/", type: "dir" },
      { name: "data/random", data: randomBytes(9 << 20) },
      ...Array.from({ length: 50 }, (_, i) => ({ name: `data/f${i}`, data: `file ${i}\n` })),
    ]);
    let most = 0;
    const watch = setInterval(() => { most = Math.max(most, unpackProcesses(pid)); }, 10);
    const { imageRef } = await env.b.client.image.pullImage({ image: { image: ref } });
    most = Math.max(most, unpackProcesses(pid));
    clearInterval(watch);
    assert.ok(most >= 1, "the pull ran an unpack process");
    await until("the pull's unpack processes to end", () => unpackProcesses(pid) === 0, 15_000);
    const st = await env.b.client.image.imageStatus({ image: { image: imageRef } });
    assert.equal(st.image?.id, imageRef);
    assert.match(env.b.stderr.join(""), /"msg":"image pulled".*lazy\/workers/);
  });
});
