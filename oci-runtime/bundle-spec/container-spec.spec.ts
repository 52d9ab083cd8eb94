import { test } from "node:test";
import assert from "node:assert/strict";
import { BerthError, Code } from "../foundation/errdefs.ts";
import type { ResolvedSecurity } from "../security/security-context.ts";
import { buildContainerSpec, buildInfraSpec, INFRA_OOM_SCORE_ADJ, type ContainerSpecInput, type InfraSpecInput } from "./container-spec.ts";

const security = (over: Partial<ResolvedSecurity> = {}): ResolvedSecurity => ({
  privileged: false,
  capabilities: { bounding: ["CAP_CHOWN", "CAP_KILL"], effective: ["CAP_CHOWN", "CAP_KILL"], permitted: ["CAP_CHOWN", "CAP_KILL"], inheritable: [], ambient: [] },
  noNewPrivileges: true, readonlyRootfs: false, apparmorProfile: undefined, seccomp: undefined,
  maskedPaths: ["/proc/kcore"], readonlyPaths: ["/proc/sys"], hostDevices: undefined,
  ...over,
});

const input = (over: Partial<ContainerSpecInput> = {}, pod: Partial<ContainerSpecInput["pod"]> = {}): ContainerSpecInput => ({
  id: "c1", name: "web", imageName: "busybox:latest", rootfs: "/var/run/berth/containers/c1/rootfs",
  image: { entrypoint: ["/ep"], cmd: ["serve"], env: ["A=1", "PATH=/img"], workingDir: "/srv" },
  command: [], args: [], workingDir: "", env: [{ key: "B", value: "2" }], tty: false,
  user: { uid: 10, gid: 20, additionalGids: [20, 30], username: "app", home: "/home/app" },
  mounts: [], devices: [],
  resources: { cpuShares: 512n, memoryLimitInBytes: 64n << 20n }, oomScoreAdj: -10,
  annotations: { x: "y" },
  security: security({ readonlyRootfs: true }),
  pod: {
    id: "p1", infraPid: 7, netnsPath: "/run/berth/netns/p1", network: "POD", ipc: "POD", pid: "POD",
    podDir: "/run/berth/sandboxes/p1", shmPath: "/run/berth/sandboxes/p1/shm", hostname: "pod1", cgroupParent: "/kubepods/pod1",
    ...pod,
  },
  host: { cgroupV2: false, shmSize: 65536, supportsRecursiveReadOnly: false, minOomScoreAdj: 0 },
  ...over,
});

const invalid = (re: RegExp) => (e: unknown) => e instanceof BerthError && e.code === Code.INVALID_ARGUMENT && re.test(e.message);

test("buildContainerSpec composes process, user, pod files, namespaces, resources, cgroups, annotations and security", async () => {
  const spec = await buildContainerSpec(input());
  const p = spec.process!;
  assert.deepEqual(p.args, ["/ep", "serve"]);
  assert.deepEqual(p.user, { uid: 10, gid: 20, additionalGids: [20, 30], username: "app" });
  assert.equal(p.cwd, "/srv");
  for (const e of ["A=1", "B=2", "HOSTNAME=pod1", "PATH=/img", "HOME=/home/app"]) assert.ok(p.env!.includes(e), e);
  assert.equal(p.oomScoreAdj, 0, "clamped to berthd's own oom_score_adj");
  assert.equal(p.noNewPrivileges, true);
  assert.deepEqual(p.capabilities!.bounding, ["CAP_CHOWN", "CAP_KILL"]);
  assert.deepEqual(spec.root, { path: "/var/run/berth/containers/c1/rootfs", readonly: true });
  assert.equal(spec.linux!.cgroupsPath, "/kubepods/pod1/berth-c1");
  assert.equal(spec.linux!.resources!.cpu!.shares, 512);
  assert.equal(spec.linux!.resources!.memory!.limit, 64 << 20);
  assert.ok(spec.linux!.resources!.devices!.length > 1, "default device rules kept");
  assert.deepEqual(spec.linux!.namespaces, [
    { type: "mount" },
    { type: "network", path: "/run/berth/netns/p1" },
    { type: "ipc", path: "/proc/7/ns/ipc" },
    { type: "uts", path: "/proc/7/ns/uts" },
    { type: "pid", path: "/proc/7/ns/pid" },
  ]);
  const hosts = spec.mounts!.find((m) => m.destination === "/etc/hosts")!;
  assert.deepEqual(hosts, { destination: "/etc/hosts", type: "bind", source: "/run/berth/sandboxes/p1/hosts", options: ["rbind", "rprivate", "ro"] });
  assert.equal(spec.mounts!.find((m) => m.destination === "/dev/shm")!.source, "/run/berth/sandboxes/p1/shm");
  assert.deepEqual(spec.linux!.maskedPaths, ["/proc/kcore"]);
  assert.equal(spec.hostname, undefined, "a container never sets its own hostname: it joins the pod's uts namespace");
  assert.deepEqual(spec.annotations, {
    x: "y", "io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.container-name": "web",
    "io.kubernetes.cri.sandbox-id": "p1", "io.kubernetes.cri.image-name": "busybox:latest",
  });
  assert.equal(spec.linux!.uidMappings, undefined);
});

test("a container's annotations cannot overwrite berth's own", async () => {
  const spec = await buildContainerSpec(input({ annotations: { "io.kubernetes.cri.sandbox-id": "other", "io.kubernetes.cri.container-type": "sandbox" } }));
  assert.equal(spec.annotations!["io.kubernetes.cri.sandbox-id"], "p1");
  assert.equal(spec.annotations!["io.kubernetes.cri.container-type"], "container");
});

test("host network and ipc: no network, uts or ipc namespace; cgroup v2 adds a cgroup namespace", async () => {
  const spec = await buildContainerSpec(input({ host: { cgroupV2: true, shmSize: 1, supportsRecursiveReadOnly: false, minOomScoreAdj: 0 } }, { network: "NODE", ipc: "NODE", netnsPath: "", shmPath: "" }));
  assert.deepEqual(spec.linux!.namespaces, [{ type: "mount" }, { type: "pid", path: "/proc/7/ns/pid" }, { type: "cgroup" }]);
  assert.equal(spec.mounts!.find((m) => m.destination === "/dev/shm")!.type, "tmpfs", "no pod shm: the default tmpfs stays");
});

test("the container's own pid mode wins over the pod's; TARGET needs the target's pid", async () => {
  const own = await buildContainerSpec(input({ pidMode: "CONTAINER" }));
  assert.deepEqual(own.linux!.namespaces!.find((n) => n.type === "pid"), { type: "pid" });
  const target = await buildContainerSpec(input({ pidMode: "TARGET", targetPid: 99 }));
  assert.deepEqual(target.linux!.namespaces!.find((n) => n.type === "pid"), { type: "pid", path: "/proc/99/ns/pid" });
  await assert.rejects(buildContainerSpec(input({ pidMode: "TARGET" })), invalid(/TARGET/));
});

test("a pod with its own user namespace: joined first, with its mappings", async () => {
  const userns = { path: "/run/berth/userns/pods/p1/user", uids: { containerId: 0, hostId: 100000, length: 65536 }, gids: { containerId: 0, hostId: 200000, length: 65536 } };
  const spec = await buildContainerSpec(input({}, { userns }));
  assert.deepEqual(spec.linux!.namespaces![0], { type: "user", path: userns.path });
  assert.deepEqual(spec.linux!.uidMappings, [{ containerID: 0, hostID: 100000, size: 65536 }]);
  assert.deepEqual(spec.linux!.gidMappings, [{ containerID: 0, hostID: 200000, size: 65536 }]);
});

test("a cgroup parent that escapes is refused by both builders, naming cgroup_parent", async () => {
  for (const bad of ["/kubepods/../../etc", "..", "/a/./b", "/a\0b", "kubepods.slice", "/"]) {
    await assert.rejects(buildContainerSpec(input({}, { cgroupParent: bad })), invalid(/cgroup_parent/), JSON.stringify(bad));
    await assert.rejects(buildInfraSpec(infra({ cgroupParent: bad })), invalid(/cgroup_parent/), JSON.stringify(bad));
  }
  assert.equal((await buildContainerSpec(input({}, { cgroupParent: "" }))).linux!.cgroupsPath, "/berth/berth-c1");
  assert.equal((await buildContainerSpec(input({}, { cgroupParent: "kubepods//burstable/" }))).linux!.cgroupsPath, "/kubepods/burstable/berth-c1");
});

test("bad CRI values fail with INVALID_ARGUMENT naming them", async () => {
  await assert.rejects(buildContainerSpec(input({ env: [{ key: "A=B", value: "x" }] })), invalid(/config\.envs/));
  await assert.rejects(buildContainerSpec(input({ workingDir: "relative" })), invalid(/relative/));
  await assert.rejects(buildContainerSpec(input({ image: {}, command: [], args: [] })), invalid(/no command/));
  await assert.rejects(buildContainerSpec(input({ mounts: [{ containerPath: "/x/../y", hostPath: "/tmp" }] })), invalid(/\.\./));
});

const infra = (over: Partial<InfraSpecInput> = {}): InfraSpecInput => ({
  id: "p1", rootfs: "/run/berth/infra/rootfs", hostname: "pod1", netnsPath: "/run/berth/netns/p1",
  network: "POD", ipc: "POD", pid: "POD", sysctls: { "net.ipv4.ip_unprivileged_port_start": "0" },
  cgroupParent: "/kubepods/pod1", user: { uid: 0, gid: 0, additionalGids: [0, 5] }, security: security(), minOomScoreAdj: -1000,
  ...over,
});

test("buildInfraSpec: catatonit holding the pod's namespaces, in <parent>/berth-<id>, without capabilities", async () => {
  const spec = await buildInfraSpec(infra());
  assert.deepEqual(spec.process!.args, ["/catatonit", "-P"]);
  assert.equal(spec.process!.oomScoreAdj, INFRA_OOM_SCORE_ADJ);
  assert.deepEqual(spec.process!.user, { uid: 0, gid: 0, additionalGids: [0, 5] });
  assert.deepEqual(spec.process!.capabilities, { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] });
  assert.equal(spec.process!.noNewPrivileges, true);
  assert.deepEqual(spec.root, { path: "/run/berth/infra/rootfs", readonly: true });
  assert.equal(spec.hostname, "pod1");
  assert.equal(spec.linux!.cgroupsPath, "/kubepods/pod1/berth-p1");
  assert.deepEqual(spec.linux!.sysctl, { "net.ipv4.ip_unprivileged_port_start": "0" });
  assert.deepEqual(spec.linux!.namespaces, [
    { type: "mount" }, { type: "pid" }, { type: "ipc" }, { type: "uts" }, { type: "network", path: "/run/berth/netns/p1" },
  ]);
  assert.deepEqual(spec.annotations, { "io.kubernetes.cri.container-type": "sandbox", "io.kubernetes.cri.sandbox-id": "p1" });
  assert.equal((await buildInfraSpec(infra({ minOomScoreAdj: -500 }))).process!.oomScoreAdj, -500, "clamped to berthd's own");
});

test("buildInfraSpec: host namespaces are not created; a pod user namespace comes first with its mappings", async () => {
  const host = await buildInfraSpec(infra({ network: "NODE", ipc: "NODE", pid: "NODE", netnsPath: "" }));
  assert.deepEqual(host.linux!.namespaces, [{ type: "mount" }]);
  assert.equal(host.hostname, undefined);
  const userns = { path: "/run/berth/userns/pods/p1/user", uids: { containerId: 0, hostId: 100000, length: 65536 }, gids: { containerId: 0, hostId: 100000, length: 65536 } };
  const own = await buildInfraSpec(infra({ userns }));
  assert.deepEqual(own.linux!.namespaces![0], { type: "user", path: userns.path });
  assert.deepEqual(own.linux!.uidMappings, [{ containerID: 0, hostID: 100000, size: 65536 }]);
  await assert.rejects(buildInfraSpec(infra({ netnsPath: "" })), (e) => e instanceof BerthError && e.code === Code.INTERNAL);
});
