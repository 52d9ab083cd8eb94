// PSI (kubelet's KubeletPSI): ContainerStats and PodSandboxStats carry cpu.psi, memory.psi
// and io.psi read from the cgroup's *.pressure files (the unified tree on this hybrid host);
// where there is no such cgroup nothing is reported, not zeros.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { detectCgroupLayout } from "../../oci-runtime/cgroups/mode.ts";
import { removeCgroup } from "../../oci-runtime/cgroups/paths.ts";
import { podConfig, startPodEnv, type PodEnv } from "../lib/pod.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const someTotal = (text: string) => BigInt(/^some .* total=(\d+)$/m.exec(text)![1]!);

describe("PSI in container and pod stats", () => {
  let env: PodEnv;
  const parent = `/berth-psi-${randomBytes(4).toString("hex")}`;
  let podId = "";
  let busy = "";
  let created = "";
  let plainPod = "";
  let unified = "";
  const rt = () => env.b.client.runtime;

  before(async () => {
    const layout = await detectCgroupLayout();
    assert.ok(layout.v2, "this host has a unified cgroup tree (PSI lives there)");
    unified = layout.v2!;
    env = await startPodEnv({ images: true });
    await env.b.client.image.pullImage({ image: { image: env.images!.busybox } });
    const cfg = podConfig({ linux: { cgroupParent: parent } });
    podId = (await rt().runPodSandbox({ config: cfg })).podSandboxId;
    const mk = async (name: string, command: string[]) => (await rt().createContainer({
      podSandboxId: podId, sandboxConfig: cfg as never,
      config: { metadata: { name }, image: { image: env.images!.busybox }, command },
    })).containerId;
    busy = await mk("busy", ["sh", "-c", "while :; do :; done"]);
    await rt().startContainer({ containerId: busy });
    created = await mk("created", ["true"]);
    const plain = podConfig();
    plainPod = (await rt().runPodSandbox({ config: plain })).podSandboxId;
  });
  after(async () => {
    await env?.cleanup();
    const left = await removeCgroup(await detectCgroupLayout(), parent);
    assert.deepEqual(left, [], `the test's cgroup parent ${parent} is removed`);
  });

  test("a running container reports cpu, memory and io PSI matching its pressure files", async () => {
    let stats;
    // The busy loop competes for the CPU on a shared machine: its "some" stall total grows.
    for (let i = 0; i < 100; i++) {
      stats = (await rt().containerStats({ containerId: busy })).stats!;
      if ((stats.cpu?.psi?.Some?.Total ?? 0n) > 0n) break;
      await sleep(300);
    }
    const cpuPsi = stats!.cpu!.psi!;
    assert.ok(cpuPsi.Some!.Total > 0n, `cpu some total grows under contention: ${cpuPsi.Some!.Total}`);
    for (const d of [cpuPsi.Some!, cpuPsi.Full!]) for (const a of [d.Avg10, d.Avg60, d.Avg300]) assert.ok(a >= 0 && a <= 100, `average ${a} is a percentage`);
    assert.ok(stats!.memory!.psi!.Some, "memory psi some");
    assert.ok(stats!.memory!.psi!.Full, "memory psi full");
    assert.ok(stats!.io!.psi!.Some && stats!.io!.psi!.Full, "io psi");
    assert.ok(stats!.io!.timestamp > 0n);
    // The numbers are the container cgroup's own (read the file after the RPC: totals only grow).
    const status = await rt().containerStatus({ containerId: busy, verbose: true });
    const cgPath = `${parent}/berth-${busy}`;
    const after = someTotal(readFileSync(`${unified}${cgPath}/cpu.pressure`, "utf8"));
    assert.ok(status.status && cpuPsi.Some!.Total <= after, `${cpuPsi.Some!.Total} <= ${after} from ${cgPath}`);
    const host = someTotal(readFileSync("/proc/pressure/cpu", "utf8"));
    assert.ok(cpuPsi.Some!.Total < host, "not the host-wide pressure");
  });

  test("pod stats carry the pod cgroup's PSI; containers without a cgroup and pods without one report none", async () => {
    const pod = (await rt().podSandboxStats({ podSandboxId: podId })).stats!.linux!;
    assert.ok(pod.cpu!.psi!.Some, "pod cpu psi");
    assert.ok(pod.memory!.psi!.Some, "pod memory psi");
    assert.ok(pod.io!.psi!.Some, "pod io psi");
    const notRunning = pod.containers.find((c) => c.attributes!.id === created)!;
    assert.equal(notRunning.cpu, undefined);
    assert.equal(notRunning.io, undefined, "a created container has no cgroup: no io psi at all, not zeros");
    const plain = (await rt().podSandboxStats({ podSandboxId: plainPod })).stats!.linux!;
    assert.equal(plain.io, undefined, "a pod without a cgroup of its own: PSI cannot be summed, so none");
    assert.equal(plain.cpu?.psi, undefined);
  });
});
