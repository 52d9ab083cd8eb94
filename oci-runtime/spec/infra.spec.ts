import { test } from "node:test";
import assert from "node:assert/strict";
import { buildInfraSpec, isStaticElf } from "./infra.ts";

test("infra spec: catatonit -P, new ns per pod, pinned netns, hostname, sysctls, cgroup, clamped oom", async () => {
  const s = await buildInfraSpec({ rootfs: "/state/infra-rootfs", hostname: "pod1", netnsPath: "/run/netns/x", sysctls: { "net.ipv4.ip_forward": "1" },
    cgroupsPath: "/kubepods/pod1/infra", minOomScoreAdj: -500, annotations: { "io.berth.kind": "infra" } });
  assert.deepEqual(s.process!.args, ["/catatonit", "-P"]);
  assert.deepEqual(s.linux!.namespaces, [{ type: "mount" }, { type: "network", path: "/run/netns/x" }, { type: "ipc" }, { type: "uts" }, { type: "pid" }]);
  assert.equal(s.hostname, "pod1");
  assert.equal(s.linux!.cgroupsPath, "/kubepods/pod1/infra");
  assert.equal(s.process!.oomScoreAdj, -500);
  assert.equal(s.root!.readonly, true);
  assert.deepEqual(s.linux!.sysctl, { "net.ipv4.ip_forward": "1" });
});

test("host network, ipc and pid leave those namespaces (and uts) out and skip the hostname", async () => {
  const s = await buildInfraSpec({ rootfs: "r", hostname: "h", hostNetwork: true, ipc: "NODE", pid: 2, minOomScoreAdj: -1000 });
  assert.deepEqual(s.linux!.namespaces, [{ type: "mount" }]);
  assert.equal(s.hostname, undefined);
  assert.equal(s.process!.oomScoreAdj, -998);
});

test("a net sysctl on a host-network pod is refused", async () => {
  await assert.rejects(buildInfraSpec({ rootfs: "r", hostNetwork: true, sysctls: { "net.ipv4.ip_forward": "1" } }), /not allowed/);
});

test("isStaticElf tells catatonit (static) from node (dynamic)", async () => {
  assert.equal(await isStaticElf("/usr/bin/catatonit"), true);
  assert.equal(await isStaticElf(process.execPath), false);
});
