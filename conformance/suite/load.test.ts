// Load: 100 pods with 2 containers each are created, listed, exec'd and removed.
// Prints berthd's memory and RPC latencies before and after (figures, not assertions)
// and checks that nothing leaked.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { podConfig, startPodEnv, type PodEnv } from "../lib/pod.ts";

const PODS = Number(process.env.BERTH_LOAD_PODS ?? 100);
const CONCURRENCY = 8;

async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

async function pool<T>(n: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n);
  let next = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < n) { const i = next++; out[i] = await fn(i); }
  }));
  return out;
}

const p50 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

describe("load", () => {
  let env: PodEnv;
  before(async () => {
    env = await startPodEnv({ images: true, toml: "[log]\nlevel = \"warn\"\n" });
    await env.b.client.image.pullImage({ image: { image: env.images!.busybox } });
  });
  after(async () => { await env.cleanup(); });

  test(`${PODS} pods x 2 containers: create, list, exec, remove; nothing leaks`, { timeout: 900_000 }, async () => {
    const c = env.b.client.runtime;
    const pid = env.b.proc.pid!;
    const time = async (fn: () => Promise<unknown>) => { const t = performance.now(); await fn(); return performance.now() - t; };
    const listBefore = await time(() => c.listContainers({}));
    const rssBefore = await rssMb(pid);
    const deadline = Date.now() + 600_000;
    const pods = await pool(PODS, async (i) => {
      if (Date.now() > deadline) throw new Error("load test ran out of time");
      const cfg = podConfig();
      const { podSandboxId } = await c.runPodSandbox({ config: cfg });
      const ctrs: string[] = [];
      for (const name of ["a", "b"]) {
        const { containerId } = await c.createContainer({ podSandboxId, sandboxConfig: cfg, config: { metadata: { name }, image: { image: env.images!.busybox }, command: ["sleep", "3600"], labels: { pod: String(i) } } });
        await c.startContainer({ containerId });
        ctrs.push(containerId);
      }
      return { podSandboxId, ctrs };
    });
    const listed = await c.listContainers({});
    assert.equal(listed.containers.length, PODS * 2);
    const listLatencies: number[] = [];
    for (let i = 0; i < 10; i++) listLatencies.push(await time(() => c.listContainers({})));
    const execLatencies = await pool(PODS, async (i) => time(async () => {
      const r = await c.execSync({ containerId: pods[i]!.ctrs[i % 2]!, cmd: ["echo", `pod-${i}`], timeout: 30n });
      assert.equal(Buffer.from(r.stdout).toString(), `pod-${i}\n`);
    }));
    const rssLoaded = await rssMb(pid);
    const conmons = spawnSync("pgrep", ["-c", "-x", "conmon"], { encoding: "utf8" }).stdout.trim();
    await pool(PODS, async (i) => c.removePodSandbox({ podSandboxId: pods[i]!.podSandboxId }));
    const rssAfter = await rssMb(pid);
    const listAfter = await time(() => c.listContainers({}));
    process.stdout.write(`# load: ${PODS} pods x 2 containers; berthd RSS ${rssBefore.toFixed(1)} MB before, ${rssLoaded.toFixed(1)} MB loaded, ${rssAfter.toFixed(1)} MB after; ` +
      `ListContainers ${listBefore.toFixed(1)} ms empty, p50 ${p50(listLatencies).toFixed(1)} ms with ${PODS * 2}, ${listAfter.toFixed(1)} ms after; ExecSync p50 ${p50(execLatencies).toFixed(1)} ms; conmon processes while loaded: ${conmons}\n`);
    assert.equal((await c.listContainers({})).containers.length, 0);
    assert.equal((await c.listPodSandbox({})).items.length, 0);
    assert.deepEqual(readdirSync(`${env.b.state}/netns`), []);
    assert.deepEqual(await env.net.leases(), []);
    const mounts = (await readFile("/proc/self/mountinfo", "utf8")).split("\n").filter((l) => l.includes(env.b.dir) && !l.includes(" - nsfs ") && !/\/netns /.test(l));
    assert.deepEqual(mounts, [], "no mounts left under berth's directories");
    assert.equal(spawnSync("runc", ["--root", `${env.b.state}/runc`, "list", "-q"], { encoding: "utf8" }).stdout.trim(), "");
  });
});
