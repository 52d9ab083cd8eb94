// Pod sandboxes over the real socket: run, status, list, stop, remove, bad input,
// idempotency, rollback, and recovery after a restart.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { PodSandboxState, NamespaceMode } from "../../proto/gen/runtime/v1/api_pb.js";
import { codeOf, grpc } from "../lib/cri-client.ts";
import { podConfig, startPodEnv, type PodEnv } from "../lib/pod.ts";

const mounts = () => readFile("/proc/self/mountinfo", "utf8");

describe("pod sandbox lifecycle", () => {
  let env: PodEnv;
  before(async () => { env = await startPodEnv(); });
  after(async () => { await env.cleanup(); });

  test("RunPodSandbox gives a ready pod with an IP from the CNI network and its own namespaces (pid POD: an infra process)", async () => {
    const c = env.b.client.runtime;
    const cfg = podConfig({ linux: { securityContext: { namespaceOptions: { pid: NamespaceMode.POD } } } });
    const { podSandboxId: id } = await c.runPodSandbox({ config: cfg });
    assert.match(id, /^[0-9a-f]{64}$/);
    const st = await c.podSandboxStatus({ podSandboxId: id, verbose: true });
    assert.equal(st.status?.state, PodSandboxState.SANDBOX_READY);
    assert.equal(st.status?.metadata?.name, cfg.metadata.name);
    assert.deepEqual(st.status?.labels, cfg.labels);
    assert.equal(st.status?.runtimeHandler, "runc");
    const ip = st.status?.network?.ip ?? "";
    const prefix = env.net.subnet.split(".").slice(0, 3).join(".") + ".";
    assert.ok(ip.startsWith(prefix), `pod ip ${ip} in ${env.net.subnet}`);
    const info = JSON.parse(st.info["info"]!);
    assert.ok(info.pid > 0);
    // The infra process lives in the pinned netns and its own uts/ipc/pid namespaces.
    const { readlinkSync } = await import("node:fs");
    for (const ns of ["uts", "ipc", "pid", "net"]) {
      assert.notEqual(readlinkSync(`/proc/${info.pid}/ns/${ns}`), readlinkSync(`/proc/self/ns/${ns}`), `${ns} namespace is the pod's own`);
    }
    assert.equal(await readFile(`/proc/${info.pid}/comm`, "utf8"), "catatonit\n");
    // The host reaches the pod: the pod's gateway-side leases exist.
    assert.ok((await env.net.leases()).includes(ip));
    // List with filters.
    const all = await c.listPodSandbox({});
    assert.ok(all.items.some((p) => p.id === id));
    assert.equal((await c.listPodSandbox({ filter: { id: id.slice(0, 12) } })).items.length, 1);
    assert.equal((await c.listPodSandbox({ filter: { labelSelector: { app: "nope" } } })).items.filter((p) => p.id === id).length, 0);
    assert.equal((await c.listPodSandbox({ filter: { state: { state: PodSandboxState.SANDBOX_NOTREADY } } })).items.filter((p) => p.id === id).length, 0);
    // Stop: not ready, network gone, idempotent.
    await c.stopPodSandbox({ podSandboxId: id });
    await c.stopPodSandbox({ podSandboxId: id });
    const stopped = await c.podSandboxStatus({ podSandboxId: id });
    assert.equal(stopped.status?.state, PodSandboxState.SANDBOX_NOTREADY);
    assert.ok(!(await env.net.leases()).includes(ip), "the IP lease is released on stop");
    assert.ok(!existsSync(`/proc/${info.pid}`) || (await readFile(`/proc/${info.pid}/stat`, "utf8")).includes(") Z"), "infra process is gone");
    // Remove: gone, idempotent.
    await c.removePodSandbox({ podSandboxId: id });
    await c.removePodSandbox({ podSandboxId: id });
    await assert.rejects(c.podSandboxStatus({ podSandboxId: id }), (e) => codeOf(e) === grpc.status.NOT_FOUND);
    assert.ok(!(await mounts()).includes(id.slice(0, 32)), "no mounts of the pod remain");
  });

  test("a second sandbox with the same name is refused with the existing id", async () => {
    const c = env.b.client.runtime;
    const cfg = podConfig();
    const { podSandboxId: id } = await c.runPodSandbox({ config: cfg });
    await assert.rejects(c.runPodSandbox({ config: { ...cfg, labels: { other: "x" } } }), (e) => {
      assert.equal(codeOf(e), grpc.status.ALREADY_EXISTS);
      assert.ok((e as Error).message.includes(id), "names the existing sandbox");
      return true;
    });
    await c.removePodSandbox({ podSandboxId: id });
  });

  test("bad input is INVALID_ARGUMENT naming the field and creates nothing", async () => {
    const c = env.b.client.runtime;
    const before = (await c.listPodSandbox({})).items.length;
    const cases: [unknown, RegExp][] = [
      [{}, /config must be set/],
      [{ config: { ...podConfig(), metadata: undefined } }, /config\.metadata must be set/],
      [{ config: { ...podConfig(), metadata: { name: "", namespace: "n", uid: "u" } } }, /metadata\.name/],
      [{ config: podConfig(), runtimeHandler: "kata" }, /runtime handler "kata"/],
      [{ config: podConfig({ linux: { sysctls: { "kernel.hostname_nope": "1" } } }) }, /kernel\.hostname_nope/],
      [{ config: podConfig({ linux: { sysctls: { "vm.swappiness": "10" } } }) }, /vm\.swappiness/],
      [{ config: podConfig({ linux: { sysctls: { "net.ipv4.ip_forward": "1" }, securityContext: { namespaceOptions: { network: NamespaceMode.NODE } } } }) }, /net\.ipv4\.ip_forward/],
    ];
    for (const [req, re] of cases) {
      await assert.rejects(c.runPodSandbox(req as never), (e) => {
        assert.equal(codeOf(e), grpc.status.INVALID_ARGUMENT, String(e));
        assert.match((e as Error).message, re);
        return true;
      });
    }
    assert.equal((await c.listPodSandbox({})).items.length, before);
  });

  test("stop and remove of an unknown id succeed; status of an unknown id is NOT_FOUND", async () => {
    const c = env.b.client.runtime;
    await c.stopPodSandbox({ podSandboxId: "0".repeat(64) });
    await c.removePodSandbox({ podSandboxId: "0".repeat(64) });
    await assert.rejects(c.podSandboxStatus({ podSandboxId: "0".repeat(64) }), (e) => codeOf(e) === grpc.status.NOT_FOUND && /not found/.test((e as Error).message));
  });

  test("a failing CNI plugin rolls back everything and names the plugin", async () => {
    const c = env.b.client.runtime;
    await env.net.writePlugin("failer", `#!/bin/sh\ncat >/dev/null\nif [ "$CNI_COMMAND" = VERSION ]; then echo '{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}'; exit 0; fi\nif [ "$CNI_COMMAND" = ADD ]; then echo '{"cniVersion":"1.0.0","code":11,"msg":"injected failure","details":"by the test"}'; exit 1; fi\nexit 0\n`);
    await env.net.writeConflist({ extraPlugins: [{ type: "failer" }] });
    try {
      const leasesBefore = await env.net.leases();
      const netnsBefore = readdirSync(`${env.b.state}/netns`).length;
      await assert.rejects(c.runPodSandbox({ config: podConfig() }), (e) => {
        assert.match((e as Error).message, /failer/);
        assert.match((e as Error).message, /injected failure/);
        return true;
      });
      assert.deepEqual(await env.net.leases(), leasesBefore, "no IP lease leaked");
      assert.equal(readdirSync(`${env.b.state}/netns`).length, netnsBefore, "no netns leaked");
      assert.equal((await env.net.bridgePorts()).length, 0, "no veth leaked");
      assert.equal((await c.listPodSandbox({})).items.length, 0);
      assert.ok(!readdirSync(`${env.b.state}/sandboxes`).length, "no pod directory leaked");
    } finally {
      await env.net.writeConflist();
    }
  });

  for (const pid of [NamespaceMode.POD, NamespaceMode.CONTAINER]) test(`DNS config, hostname and sysctls take effect inside the pod (pid ${NamespaceMode[pid]})`, async () => {
    const c = env.b.client.runtime;
    const cfg = podConfig({
      hostname: "dns-host",
      dnsConfig: { servers: ["10.0.0.10"], searches: ["svc.cluster.local"], options: ["ndots:5"] },
      linux: { sysctls: { "net.ipv4.ip_unprivileged_port_start": "80", "kernel.shmmni": "4000" }, securityContext: { namespaceOptions: { pid } } },
    });
    const { podSandboxId: id } = await c.runPodSandbox({ config: cfg });
    const info = JSON.parse((await c.podSandboxStatus({ podSandboxId: id, verbose: true })).info["info"]!);
    const resolv = await readFile(`${info.podDir}/resolv.conf`, "utf8");
    assert.match(resolv, /nameserver 10\.0\.0\.10/);
    assert.match(resolv, /search svc\.cluster\.local/);
    assert.match(resolv, /options ndots:5/);
    assert.equal(await readFile(`${info.podDir}/hostname`, "utf8"), "dns-host\n");
    const { spawnSync } = await import("node:child_process");
    // The infra process's namespaces, or (no infra) the pinned ones and the pod's netns.
    const pinned: Record<string, string> = { "--uts": `--uts=${info.pins?.uts}`, "--ipc": `--ipc=${info.pins?.ipc}`, "--net": `--net=${info.netnsPath}` };
    assert.equal(info.pid > 0, pid === NamespaceMode.POD, "an infra process only for pid POD");
    const inPod = (ns: string, cmd: string[]) => spawnSync("nsenter", [...(info.pid > 0 ? [`--target=${info.pid}`, ns] : [pinned[ns]!]), "--", ...cmd], { encoding: "utf8" });
    assert.equal(inPod("--uts", ["hostname"]).stdout.trim(), "dns-host");
    assert.equal(inPod("--net", ["cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"]).stdout.trim(), "80");
    assert.equal(inPod("--ipc", ["cat", "/proc/sys/kernel/shmmni"]).stdout.trim(), "4000");
    const hosts = await readFile(`${info.podDir}/hosts`, "utf8");
    const st = await c.podSandboxStatus({ podSandboxId: id });
    assert.match(hosts, new RegExp(`${st.status!.network!.ip.replace(/\./g, "\\.")}\\s+dns-host`));
    await c.removePodSandbox({ podSandboxId: id });
  });

  test("a host-network pod sees the host's interfaces and gets no pod IP", async () => {
    const c = env.b.client.runtime;
    const { podSandboxId: id } = await c.runPodSandbox({ config: podConfig({ linux: { securityContext: { namespaceOptions: { network: NamespaceMode.NODE, pid: NamespaceMode.POD } } } }) });
    const st = await c.podSandboxStatus({ podSandboxId: id, verbose: true });
    assert.equal(st.status?.network?.ip, "");
    assert.equal(st.status?.linux?.namespaces?.options?.network, NamespaceMode.NODE);
    const info = JSON.parse(st.info["info"]!);
    const { readlinkSync } = await import("node:fs");
    assert.equal(readlinkSync(`/proc/${info.pid}/ns/net`), readlinkSync("/proc/self/ns/net"));
    await c.removePodSandbox({ podSandboxId: id });
  });
});

describe("pod sandbox recovery", () => {
  let env: PodEnv;
  before(async () => { env = await startPodEnv(); });
  after(async () => { await env.cleanup(); });

  test("after kill -9 and restart, ready pods are still ready and stoppable", async () => {
    const c0 = env.b.client.runtime;
    const ids: string[] = [];
    // The first with an infra process (pid POD), the others without.
    ids.push((await c0.runPodSandbox({ config: podConfig({ linux: { securityContext: { namespaceOptions: { pid: NamespaceMode.POD } } } }) })).podSandboxId);
    for (let i = 0; i < 2; i++) ids.push((await c0.runPodSandbox({ config: podConfig() })).podSandboxId);
    await env.b.kill9();
    await env.b.restart();
    const c = env.b.client.runtime;
    for (const id of ids) {
      const st = await c.podSandboxStatus({ podSandboxId: id });
      assert.equal(st.status?.state, PodSandboxState.SANDBOX_READY);
    }
    // A pod whose infra died while berthd was down is reported not ready.
    const info = JSON.parse((await c.podSandboxStatus({ podSandboxId: ids[0]!, verbose: true })).info["info"]!);
    assert.ok(info.pid > 0, "the pid POD pod has an infra process");
    await env.b.stop();
    process.kill(info.pid, "SIGKILL");
    await new Promise((r) => setTimeout(r, 200));
    await env.b.restart();
    const c2 = env.b.client.runtime;
    assert.equal((await c2.podSandboxStatus({ podSandboxId: ids[0]! })).status?.state, PodSandboxState.SANDBOX_NOTREADY);
    for (const id of ids) await c2.removePodSandbox({ podSandboxId: id });
    assert.deepEqual(await env.net.leases(), []);
  });
});
