// What berthd leaves unloaded until it is used, over the real socket: with the default config no
// streaming server listens (and no metrics endpoint) until the first Exec; that Exec starts it
// and works, and later Execs reuse the same server. Pulls run in a pull process, and the processes
// that unpack large layers under it (none on two CPUs), only around a pull: a pull starts them,
// the unpack processes download their layers themselves, and all of them end once idle.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { availableParallelism } from "node:os";
import { buildImage, layerBlob } from "../../hack/registry/oci-image.ts";
import { pushImage } from "../../hack/registry/push.ts";
import { buildTar } from "../../hack/registry/tar-writer.ts";
import { PULL_PROCESS_UNPACKS } from "../../image-service/pull-process.ts";
import { childProcesses } from "../lib/procs.ts";
import { runRemoteCommand } from "../lib/spdy-client.ts";
import { podConfig, startPodEnv, type PodEnv } from "../lib/pod.ts";

/** The TCP sockets among a process's fds (it may have exited: none), from its netns's tables. */
function tcpSockets(pid: number): { state: string; localPort: number; remotePort: number }[] {
  const inodes = new Set<string>();
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.add(m[1]!);
      } catch { /* closed meanwhile */ }
    }
  } catch { return []; } // the process is gone
  const out: { state: string; localPort: number; remotePort: number }[] = [];
  for (const table of ["tcp", "tcp6"]) {
    let text = "";
    try { text = readFileSync(`/proc/${pid}/net/${table}`, "utf8"); } catch { return out; }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || !inodes.has(f[9]!)) continue;
      out.push({ state: f[3]!, localPort: parseInt(f[1]!.split(":")[1]!, 16), remotePort: parseInt(f[2]!.split(":")[1]!, 16) });
    }
  }
  return out;
}

/** TCP ports berthd (pid) listens on: listening sockets in its netns whose inode is one of its fds. */
function listeningPorts(pid: number): number[] {
  return tcpSockets(pid).filter((s) => s.state === "0A").map((s) => s.localPort); // 0A: LISTEN
}

/** berthd's descendants whose command line names `module`. */
function descendantsRunning(pid: number, module: string): number[] {
  const all: number[] = [];
  for (let level = [pid]; level.length > 0 && all.length < 1000;) {
    level = childProcesses(level).map((c) => c.pid);
    all.push(...level);
  }
  return all.filter((p) => {
    try { return readFileSync(`/proc/${p}/cmdline`, "utf8").includes(module); } catch { return false; }
  });
}
/** berthd's layer unpack processes: the pull process's children running unpack-worker. */
const unpackPids = (pid: number) => descendantsRunning(pid, "unpack-worker");
const unpackProcesses = (pid: number) => unpackPids(pid).length;
/** berthd's pull process (pull-worker). */
const pullPids = (pid: number) => childProcesses([pid]).map((c) => c.pid).filter((p) => descendantsRunning(pid, "pull-worker").includes(p));

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

  // With one CPU berthd unpacks every layer itself (image-service.ts): nothing to see there. The
  // pull process unpacks PULL_PROCESS_UNPACKS large layers itself at once, and starts an unpack
  // process for each further layer in flight up to the CPUs: on two CPUs, none.
  const unpackers = Math.max(0, Math.min(3, availableParallelism()) - PULL_PROCESS_UNPACKS);
  test(`large layers are unpacked by the pull process and ${unpackers} unpack process(es) on ${availableParallelism()} CPUs, which end when idle`, { skip: availableParallelism() <= 1 ? "one CPU: berthd unpacks every layer itself" : false }, async () => {
    const pid = env.b.proc.pid!;
    // busybox's small layer (before()) was unpacked by the pull process itself; it has ended since.
    await until("the pull process of before()'s pull to end", () => pullPids(pid).length === 0, 15_000);
    assert.equal(unpackProcesses(pid), 0);
    // Layers of 8 MiB and more (compressed) are large. These three, downloaded at once (three
    // downloads by default), are 9 MiB of random bytes each.
    const layer = (i: number) => layerBlob(buildTar([
      { name: `data${i}/`, type: "dir" },
      { name: `data${i}/random`, data: randomBytes(9 << 20) },
      ...Array.from({ length: 50 }, (_, j) => ({ name: `data${i}/f${j}`, data: `file ${j}\n` })),
    ]));
    const ref = `${env.images!.registry.address}/lazy/workers:latest`;
    await pushImage({ address: env.images!.registry.address }, "lazy/workers", "latest", buildImage([layer(1), layer(2), layer(3)]));
    const registryPort = Number(env.images!.registry.address.split(":").at(-1));
    let most = 0;
    let pullers = 0;
    /** An unpack process was seen connected to the registry: it downloads the layer itself. */
    let fetchedItself = false;
    /** The pull process was seen connected to the registry. */
    let pullerFetched = false;
    const look = () => {
      const pids = unpackPids(pid);
      most = Math.max(most, pids.length);
      const pp = pullPids(pid);
      pullers = Math.max(pullers, pp.length);
      fetchedItself ||= pids.some((p) => tcpSockets(p).some((s) => s.remotePort === registryPort));
      pullerFetched ||= pp.some((p) => tcpSockets(p).some((s) => s.remotePort === registryPort));
    };
    const watch = setInterval(look, 5);
    const { imageRef } = await env.b.client.image.pullImage({ image: { image: ref } });
    look();
    clearInterval(watch);
    assert.equal(pullers, 1, "one pull process, berthd's child");
    assert.ok(pullerFetched, "the pull process had a connection to the registry");
    if (unpackers === 0) {
      assert.equal(most, 0, "no unpack process on two CPUs");
    } else {
      assert.ok(most >= 1, "the pull ran an unpack process");
      assert.ok(fetchedItself, "an unpack process had a connection to the registry");
    }
    assert.doesNotMatch(env.b.stderr.join(""), /layer download handed back to berthd/);
    await until("the pull's unpack processes and the pull process to end", () => unpackProcesses(pid) === 0 && pullPids(pid).length === 0, 15_000);
    const st = await env.b.client.image.imageStatus({ image: { image: imageRef } });
    assert.equal(st.image?.id, imageRef);
    assert.match(env.b.stderr.join(""), /"msg":"image pulled".*lazy\/workers/);
  });
});
