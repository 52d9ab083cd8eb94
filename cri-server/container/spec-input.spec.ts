import { test } from "node:test";
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { ContainerConfigSchema, NamespaceMode, PodSandboxConfigSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import { BerthError, Code } from "../../oci-runtime/foundation/errdefs.ts";
import type { ResolvedSecurity } from "../../oci-runtime/security/index.ts";
import { buildContainerSpec, buildInfraSpec } from "../../oci-runtime/bundle-spec/container-spec.ts";
import type { Image } from "../../image-service/image-service.ts";
import type { SandboxRecord } from "../sandbox/sandbox-record.ts";
import { containerSpecInput, infraSpecInput, namespaceMode, podSpecInput, type CriContainerSpecSource } from "./spec-input.ts";

const security: ResolvedSecurity = {
  privileged: false, capabilities: { bounding: [], effective: [], permitted: [], inheritable: [], ambient: [] },
  noNewPrivileges: false, readonlyRootfs: false, apparmorProfile: undefined, seccomp: undefined, maskedPaths: [], readonlyPaths: [], hostDevices: undefined,
};
const userns = { path: "/run/berth/userns/pods/p1/user", uids: { containerId: 0, hostId: 100000, length: 65536 }, gids: { containerId: 0, hostId: 300000, length: 65536 } };
const sandbox = (over: Partial<SandboxRecord> = {}): SandboxRecord => ({
  id: "p1", name: "web_default_u1_0", state: "ready", metadata: { name: "web", uid: "u1", namespace: "default", attempt: 0 },
  createdAt: "1", labels: {}, annotations: {}, runtimeHandler: "runc", config: {},
  namespaces: { network: NamespaceMode.POD, pid: NamespaceMode.CONTAINER, ipc: NamespaceMode.NODE, targetId: "" },
  netnsPath: "/run/berth/netns/p1", ips: [], podDir: "/run/berth/sandboxes/p1", shmPath: "", cgroupParent: "kubepods/pod1",
  infra: { pid: 42, bundle: "/b", cgroupsPath: "/kubepods/pod1/berth-p1" },
  ...over,
});
const image = { id: "sha256:i", config: { Entrypoint: ["/bin/sh"], Cmd: ["-c", "true"], Env: ["A=1"], WorkingDir: "/w", User: "app" } } as unknown as Image;

const source = (cfg: Record<string, unknown>, over: Partial<CriContainerSpecSource> = {}): CriContainerSpecSource => ({
  id: "c1",
  cfg: create(ContainerConfigSchema, { metadata: { name: "ctr", attempt: 1 }, image: { image: "busybox:1" }, ...cfg } as never),
  pod: create(PodSandboxConfigSchema, { hostname: "pod-host" }),
  sandbox: sandbox(), image, rootfs: "/r", security,
  user: { uid: 1, gid: 2, additionalGids: [2], home: "/" },
  cgroupV2: true, shmSize: 1024, supportsRecursiveReadOnly: true,
  ...over,
});

test("containerSpecInput maps every CRI field the builder uses to plain values", () => {
  const i = containerSpecInput(source({
    command: ["/x"], args: ["a"], workingDir: "/wd", tty: true,
    envs: [{ key: "K", value: "v=1" }],
    mounts: [{ containerPath: "/data", hostPath: "/host", readonly: true, propagation: 1, recursiveReadOnly: false }],
    devices: [{ containerPath: "/dev/x", hostPath: "/dev/null", permissions: "r" }],
    annotations: { a: "b" },
    linux: { resources: { cpuShares: 100n, memoryLimitInBytes: 1000n, oomScoreAdj: 5n, unified: { "memory.high": "1" } } },
  }));
  assert.equal(i.id, "c1");
  assert.equal(i.name, "ctr");
  assert.equal(i.imageName, "busybox:1");
  assert.deepEqual(i.image, { entrypoint: ["/bin/sh"], cmd: ["-c", "true"], env: ["A=1"], workingDir: "/w" });
  assert.deepEqual([i.command, i.args, i.workingDir, i.tty], [["/x"], ["a"], "/wd", true]);
  assert.deepEqual(i.env, [{ key: "K", value: "v=1" }]);
  assert.deepEqual(i.mounts, [{ containerPath: "/data", hostPath: "/host", readonly: true, propagation: 1, recursiveReadOnly: false }]);
  assert.deepEqual(i.devices, [{ containerPath: "/dev/x", hostPath: "/dev/null", permissions: "r" }]);
  assert.equal(i.resources.cpuShares, 100n);
  assert.deepEqual(i.resources.unified, { "memory.high": "1" });
  assert.equal(i.oomScoreAdj, 5);
  assert.deepEqual(i.annotations, { a: "b" });
  assert.equal(i.pidMode, undefined, "no namespace_options: the pod's pid mode");
  assert.deepEqual(i.host, { cgroupV2: true, shmSize: 1024, supportsRecursiveReadOnly: true });
  assert.deepEqual(i.pod, {
    id: "p1", infraPid: 42, netnsPath: "/run/berth/netns/p1", network: "POD", ipc: "NODE", pid: "CONTAINER",
    podDir: "/run/berth/sandboxes/p1", shmPath: "", hostname: "pod-host", cgroupParent: "kubepods/pod1",
  });
  // Nothing of protobuf reaches oci-runtime: the input survives a JSON round trip (bigints aside).
  const plain = JSON.parse(JSON.stringify(i, (_k, v) => (typeof v === "bigint" ? Number(v) : v)));
  assert.equal(plain.env[0].key, "K");
  assert.equal(Object.getPrototypeOf(i.mounts[0]), Object.prototype);
});

test("containerSpecInput: the container's pid namespace option, TARGET's pid and the pod's user namespace", () => {
  const i = containerSpecInput(source({ linux: { securityContext: { namespaceOptions: { pid: NamespaceMode.TARGET, targetId: "t" } } } }, { targetPid: 77, sandbox: sandbox({ userns }) }));
  assert.equal(i.pidMode, "TARGET");
  assert.equal(i.targetPid, 77);
  assert.deepEqual(i.pod.userns, userns);
  const pod = containerSpecInput(source({ linux: { securityContext: { namespaceOptions: {} } } }));
  assert.equal(pod.pidMode, "POD", "namespace_options set without pid: POD (proto3 default)");
});

test("namespaceMode refuses numbers that are not CRI namespace modes, naming the field", () => {
  assert.equal(namespaceMode(NamespaceMode.NODE, "f"), "NODE");
  for (const bad of [4, -1, 1.5]) {
    assert.throws(() => namespaceMode(bad, "config.x.pid"), (e) => e instanceof BerthError && e.code === Code.INVALID_ARGUMENT && /config\.x\.pid: unknown namespace mode/.test(e.message));
  }
  assert.throws(() => podSpecInput(sandbox({ namespaces: { network: 9, pid: 0, ipc: 0, targetId: "" } }), "h"), /pod p1 network namespace: unknown namespace mode 9/);
});

test("infraSpecInput: run_as_user/group and the pod's supplemental groups (gid first, no repeats)", () => {
  const config = create(PodSandboxConfigSchema, { linux: { securityContext: { runAsUser: { value: 1000n }, runAsGroup: { value: 3000n }, supplementalGroups: [3000n, 4000n, 4000n] } } });
  const i = infraSpecInput({
    id: "p1", hostname: "h", netnsPath: "/n", namespaces: { network: 0, pid: 2, ipc: 0, targetId: "" },
    sysctls: { "net.core.somaxconn": "1024" }, cgroupParent: "/kubepods/pod1", config, rootfs: "/infra", userns,
  }, security);
  assert.deepEqual(i.user, { uid: 1000, gid: 3000, additionalGids: [3000, 4000] });
  assert.deepEqual([i.network, i.pid, i.ipc], ["POD", "NODE", "POD"]);
  assert.deepEqual(i.userns, userns);
  assert.equal(i.rootfs, "/infra");
  const none = infraSpecInput({ id: "p1", hostname: "", netnsPath: "", namespaces: { network: 2, pid: 0, ipc: 0, targetId: "" }, sysctls: {}, cgroupParent: "", config: create(PodSandboxConfigSchema, {}), rootfs: "/infra" }, security);
  assert.deepEqual(none.user, { uid: 0, gid: 0, additionalGids: [0] });
  assert.equal("userns" in none, false);
});

test("mapped inputs build end to end: the container and the infra land in the same pod cgroup", async () => {
  const ctr = await buildContainerSpec(containerSpecInput(source({ command: ["/x"] })));
  assert.equal(ctr.linux!.cgroupsPath, "/kubepods/pod1/berth-c1");
  const infra = await buildInfraSpec(infraSpecInput({
    id: "p1", hostname: "h", netnsPath: "/n", namespaces: { network: 0, pid: 0, ipc: 0, targetId: "" },
    sysctls: {}, cgroupParent: "kubepods/pod1", config: create(PodSandboxConfigSchema, {}), rootfs: "/infra",
  }, security));
  assert.equal(infra.linux!.cgroupsPath, "/kubepods/pod1/berth-p1");
  await assert.rejects(buildContainerSpec(containerSpecInput(source({ command: ["/x"] }, { sandbox: sandbox({ cgroupParent: "/kubepods/../../../" }) }))),
    (e) => e instanceof BerthError && e.code === Code.INVALID_ARGUMENT && /cgroup_parent/.test(e.message));
});
