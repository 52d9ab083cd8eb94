// The Stream* RPCs answer exactly what their List* twins answer.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { podConfig, startPodEnv, type PodEnv } from "../lib/pod.ts";

async function collect<T>(s: { messages: AsyncIterable<T> }): Promise<T[]> {
  const out: T[] = [];
  for await (const m of s.messages) out.push(m);
  return out;
}

describe("streaming list RPCs", () => {
  let env: PodEnv;
  before(async () => {
    env = await startPodEnv({ images: true });
    const c = env.b.client;
    await c.image.pullImage({ image: { image: env.images!.busybox } });
    for (let i = 0; i < 3; i++) {
      const cfg = podConfig({ labels: { app: "stream", n: String(i) } });
      const { podSandboxId } = await c.runtime.runPodSandbox({ config: cfg });
      const { containerId } = await c.runtime.createContainer({ podSandboxId, sandboxConfig: cfg, config: { metadata: { name: "c" }, image: { image: env.images!.busybox }, command: ["sleep", "600"], labels: { n: String(i) } } });
      await c.runtime.startContainer({ containerId });
    }
  });
  after(async () => { await env.cleanup(); });

  test("StreamPodSandboxes and StreamContainers match the lists, filters included", async () => {
    const r = env.b.client.runtime;
    const pods = (await collect(r.streamPodSandboxes({}))).flatMap((m) => m.podSandboxes.map((p) => p.id)).sort();
    assert.deepEqual(pods, (await r.listPodSandbox({})).items.map((p) => p.id).sort());
    assert.equal(pods.length, 3);
    const one = (await collect(r.streamPodSandboxes({ filter: { labelSelector: { n: "1" } } }))).flatMap((m) => m.podSandboxes);
    assert.equal(one.length, 1);
    const ctrs = (await collect(r.streamContainers({}))).flatMap((m) => m.containers.map((c) => c.id)).sort();
    assert.deepEqual(ctrs, (await r.listContainers({})).containers.map((c) => c.id).sort());
    assert.equal(ctrs.length, 3);
  });

  test("StreamImages, StreamContainerStats, StreamPodSandboxStats and StreamPodSandboxMetrics match the lists", async () => {
    const { runtime: r, image: i } = env.b.client;
    const imgs = (await collect(i.streamImages({}))).flatMap((m) => m.images.map((x) => x.id)).sort();
    assert.deepEqual(imgs, (await i.listImages({})).images.map((x) => x.id).sort());
    const cs = (await collect(r.streamContainerStats({}))).flatMap((m) => m.containerStats.map((s) => s.attributes!.id)).sort();
    assert.deepEqual(cs, (await r.listContainerStats({})).stats.map((s) => s.attributes!.id).sort());
    assert.equal(cs.length, 3);
    const ps = (await collect(r.streamPodSandboxStats({}))).flatMap((m) => m.podSandboxStats.map((s) => s.attributes!.id)).sort();
    assert.deepEqual(ps, (await r.listPodSandboxStats({})).stats.map((s) => s.attributes!.id).sort());
    const pm = (await collect(r.streamPodSandboxMetrics({}))).flatMap((m) => m.podSandboxMetrics.map((x) => x.podSandboxId)).sort();
    assert.deepEqual(pm, (await r.listPodSandboxMetrics({})).podMetrics.map((x) => x.podSandboxId).sort());
    assert.equal(pm.length, 3);
  });
});
