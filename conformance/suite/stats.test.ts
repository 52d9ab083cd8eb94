// Stats, metrics RPCs, live resource updates and checkpoint over the real socket.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { ContainerState } from "../../proto/gen/runtime/v1/api_pb.js";
import { codeOf, grpc } from "../lib/cri-client.ts";
import { podConfig, startPodEnv, type PodEnv } from "../lib/pod.ts";

const MiB = 1024n * 1024n;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value (deadline 60 s: the machine is shared). */
async function eventually<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) { last = err; }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await sleep(300);
  }
}

describe("stats", () => {
  let env: PodEnv;
  let podId = "";
  let podIp = "";
  const pod = podConfig({ labels: { app: "stats-test" } });

  const c = () => env.b.client.runtime;
  async function runContainer(name: string, script: string, labels: Record<string, string> = {}, linux: Record<string, unknown> = {}): Promise<string> {
    const { containerId } = await c().createContainer({
      podSandboxId: podId,
      sandboxConfig: pod,
      config: {
        metadata: { name, attempt: 0 },
        image: { image: env.images!.busybox },
        command: ["sh", "-c", script],
        labels: { role: name, ...labels },
        linux,
      },
    });
    await c().startContainer({ containerId });
    return containerId;
  }

  before(async () => {
    env = await startPodEnv({ images: true });
    await env.b.client.image.pullImage({ image: { image: env.images!.busybox } });
    podId = (await c().runPodSandbox({ config: pod })).podSandboxId;
    podIp = (await c().podSandboxStatus({ podSandboxId: podId })).status?.network?.ip ?? "";
  });
  after(async () => { await env.cleanup(); });

  test("a container burning CPU and holding memory: cpu usage grows, nano cores > 0, working set above 15 MiB", async () => {
    const id = await runContainer("burner", `x=$(head -c 20000000 /dev/zero | tr "\\0" a); while :; do :; done`, { kind: "burn" });
    const first = await eventually("working set above 15 MiB", async () => {
      const s = (await c().containerStats({ containerId: id })).stats!;
      return (s.memory?.workingSetBytes?.value ?? 0n) > 15n * MiB && s;
    });
    assert.equal(first.attributes?.id, id);
    assert.equal(first.attributes?.metadata?.name, "burner");
    assert.equal(first.attributes?.labels["kind"], "burn");
    assert.ok(first.cpu!.usageCoreNanoSeconds!.value > 0n);
    assert.ok(first.memory!.usageBytes!.value >= first.memory!.workingSetBytes!.value);
    const later = await eventually("a later cpu sample with usageNanoCores > 0", async () => {
      const s = (await c().containerStats({ containerId: id })).stats!;
      return s.cpu!.timestamp > first.cpu!.timestamp && (s.cpu!.usageNanoCores?.value ?? 0n) > 0n && s;
    });
    assert.ok(later.cpu!.usageCoreNanoSeconds!.value > first.cpu!.usageCoreNanoSeconds!.value, "usageCoreNanoSeconds grows");
    assert.ok(later.memory!.workingSetBytes!.value > 15n * MiB);
    await c().removeContainer({ containerId: id });
  });

  test("writable layer bytes grow after writing a file; a stopped container reports attributes and writable layer only", async () => {
    const id = await runContainer("writer", "sleep 100000");
    const before0 = (await c().containerStats({ containerId: id })).stats!;
    assert.ok(before0.writableLayer, "writable layer reported");
    assert.ok(before0.writableLayer!.fsId!.mountpoint.startsWith(env.b.root), `fsId ${before0.writableLayer!.fsId!.mountpoint} is under root`);
    const r = await c().execSync({ containerId: id, cmd: ["dd", "if=/dev/zero", "of=/big", "bs=1048576", "count=6"], timeout: 60n });
    assert.equal(r.exitCode, 0, r.stderr.toString());
    const grown = await eventually("writable layer to grow by 5 MiB", async () => {
      const s = (await c().containerStats({ containerId: id })).stats!;
      return s.writableLayer!.usedBytes!.value >= before0.writableLayer!.usedBytes!.value + 5n * MiB && s;
    });
    assert.ok(grown.writableLayer!.inodesUsed!.value > before0.writableLayer!.inodesUsed!.value);
    await c().stopContainer({ containerId: id, timeout: 0n });
    const stopped = (await c().containerStats({ containerId: id })).stats!;
    assert.equal(stopped.attributes?.id, id);
    assert.equal(stopped.cpu, undefined, "no cpu for a stopped container");
    assert.equal(stopped.memory, undefined, "no memory for a stopped container");
    assert.ok(stopped.writableLayer!.usedBytes!.value >= 6n * MiB);
    await c().removeContainer({ containerId: id });
  });

  test("a pod's network counters grow after traffic to the pod", async () => {
    assert.ok(podIp, "pod has an IP");
    const rx = async () => {
      const s = (await c().podSandboxStats({ podSandboxId: podId })).stats!;
      assert.equal(s.attributes?.id, podId);
      const eth = s.linux!.network!.interfaces.find((i) => i.name === "eth0");
      assert.ok(eth, "eth0 reported");
      assert.equal(s.linux!.network!.defaultInterface?.name, "eth0");
      return { rx: eth.rxBytes!.value, tx: eth.txBytes!.value, ts: s.linux!.network!.timestamp };
    };
    const a = await rx();
    const ping = spawnSync("/usr/bin/busybox", ["ping", "-c", "5", "-s", "1000", "-W", "5", podIp], { encoding: "utf8" });
    assert.equal(ping.status, 0, `ping ${podIp}: ${ping.stdout}${ping.stderr}`);
    const b = await eventually("rx/tx bytes to grow by the pings", async () => {
      const v = await rx();
      return v.ts > a.ts && v.rx >= a.rx + 5000n && v.tx >= a.tx + 5000n && v;
    });
    assert.ok(b.rx > a.rx);
  });

  test("ListContainerStats filters by id prefix, pod id and labels; unknown ids are NOT_FOUND", async () => {
    const one = await runContainer("list-a", "sleep 100000", { group: "g1" });
    const two = await runContainer("list-b", "sleep 100000", { group: "g2" });
    const ids = async (filter?: Record<string, unknown>) => (await c().listContainerStats(filter ? { filter } : {})).stats.map((s) => s.attributes!.id).sort();
    assert.deepEqual(await ids(), [one, two].sort());
    assert.deepEqual(await ids({ id: one.slice(0, 16) }), [one]);
    assert.deepEqual(await ids({ podSandboxId: podId }), [one, two].sort());
    assert.deepEqual(await ids({ podSandboxId: "f".repeat(64) }), []);
    assert.deepEqual(await ids({ labelSelector: { group: "g2" } }), [two]);
    assert.deepEqual(await ids({ labelSelector: { group: "g2", role: "list-a" } }), []);
    const listed = (await c().listContainerStats({ filter: { id: one } })).stats[0]!;
    assert.ok(listed.cpu && listed.memory && listed.writableLayer, "listed stats carry cpu, memory and writable layer");

    const pods = await c().listPodSandboxStats({ filter: { labelSelector: { app: "stats-test" } } });
    assert.deepEqual(pods.stats.map((p) => p.attributes!.id), [podId]);
    assert.deepEqual(pods.stats[0]!.linux!.containers.map((x) => x.attributes!.id).sort(), [one, two].sort());
    assert.ok(pods.stats[0]!.linux!.cpu && pods.stats[0]!.linux!.memory, "pod cpu and memory");
    assert.deepEqual((await c().listPodSandboxStats({ filter: { labelSelector: { app: "none" } } })).stats, []);
    assert.deepEqual((await c().listPodSandboxStats({ filter: { id: podId.slice(0, 10) } })).stats.map((p) => p.attributes!.id), [podId]);

    const missing = "0".repeat(64);
    await assert.rejects(c().containerStats({ containerId: missing }),
      (e) => codeOf(e) === grpc.status.NOT_FOUND && String((e as Error).message).includes(missing));
    await assert.rejects(c().podSandboxStats({ podSandboxId: missing }),
      (e) => codeOf(e) === grpc.status.NOT_FOUND && String((e as Error).message).includes(missing));
    for (const id of [one, two]) await c().removeContainer({ containerId: id });
  });

  test("ListMetricDescriptors names cAdvisor metrics; ListPodSandboxMetrics has values for the running pod", async () => {
    const names = (await c().listMetricDescriptors({})).descriptors.map((d) => d.name);
    for (const n of ["container_cpu_usage_seconds_total", "container_memory_working_set_bytes", "container_network_receive_bytes_total"]) {
      assert.ok(names.includes(n), `${n} described`);
    }
    const id = await runContainer("metrics", "sleep 100000");
    const pm = (await c().listPodSandboxMetrics({})).podMetrics.find((p) => p.podSandboxId === podId);
    assert.ok(pm, "the pod has metrics");
    const rx = pm.metrics.find((m) => m.name === "container_network_receive_bytes_total" && m.labelValues.includes("eth0"));
    assert.ok(rx && rx.value!.value > 0n, "pod network receive bytes");
    const cm = pm.containerMetrics.find((x) => x.containerId === id);
    assert.ok(cm, "the container has metrics");
    const ws = cm.metrics.find((m) => m.name === "container_memory_working_set_bytes");
    assert.ok(ws && ws.value!.value > 0n, "container working set");
    assert.deepEqual(ws.labelValues, [id, "metrics", env.images!.busybox]);
    assert.ok(cm.metrics.some((m) => m.name === "container_cpu_usage_seconds_total"));
    await c().removeContainer({ containerId: id });
  });

  test("CheckpointContainer: NOT_FOUND for an unknown id; UNIMPLEMENTED naming CRIU when it cannot be used", async (t) => {
    await assert.rejects(c().checkpointContainer({ containerId: "0".repeat(64), location: "/tmp/x.tar" }),
      (e) => codeOf(e) === grpc.status.NOT_FOUND && String((e as Error).message).includes("0".repeat(64)));
    const criuWorks = spawnSync("sh", ["-c", "command -v criu >/dev/null && criu check"], { stdio: "ignore" }).status === 0;
    if (criuWorks) { t.skip("criu works here; the checkpoint path is not covered by this test"); return; }
    const id = await runContainer("ckpt", "sleep 100000");
    await assert.rejects(c().checkpointContainer({ containerId: id, location: `${env.b.dir}/ckpt.tar` }),
      (e) => codeOf(e) === grpc.status.UNIMPLEMENTED && /CRIU/.test(String((e as Error).message)));
    await c().removeContainer({ containerId: id });
  });

  test("UpdatePodSandboxResources succeeds for a pod and is NOT_FOUND for an unknown one", async () => {
    await c().updatePodSandboxResources({ podSandboxId: podId, resources: { memoryLimitInBytes: 512n * MiB, cpuShares: 512n } });
    await assert.rejects(c().updatePodSandboxResources({ podSandboxId: "0".repeat(64), resources: {} }),
      (e) => codeOf(e) === grpc.status.NOT_FOUND);
  });

  test("a lowered memory limit is kept across a berthd restart and a process over it is OOM killed", async () => {
    const id = await runContainer("oom", `while [ ! -f /go ]; do sleep 0.2; done; x=$(head -c 100000000 /dev/zero | tr "\\0" a); sleep 100000`);
    await c().updateContainerResources({ containerId: id, linux: { memoryLimitInBytes: 48n * MiB } });
    const limit = async () => (await c().containerStatus({ containerId: id })).status?.resources?.linux?.memoryLimitInBytes;
    assert.equal(await limit(), 48n * MiB);
    await env.b.restart();
    assert.equal(await limit(), 48n * MiB, "the limit survives a restart");
    const st0 = (await c().containerStatus({ containerId: id })).status!;
    assert.equal(st0.state, ContainerState.CONTAINER_RUNNING);
    const r = await c().execSync({ containerId: id, cmd: ["touch", "/go"], timeout: 30n });
    assert.equal(r.exitCode, 0);
    const st = await eventually("the container to exit", async () => {
      const s = (await c().containerStatus({ containerId: id })).status!;
      return s.state === ContainerState.CONTAINER_EXITED && s;
    });
    assert.equal(st.reason, "OOMKilled");
    assert.equal(st.exitCode, 137);
    await c().removeContainer({ containerId: id });
  });
});
