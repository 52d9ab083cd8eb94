import { test } from "node:test";
import assert from "node:assert/strict";
import { capabilityArgs, cniArgs, pluginEnv, pluginStdin, portMappingsArg, runtimeConfigFor } from "./cni-invocation.ts";

test("CNI_ARGS carries the kubernetes pod identity and IgnoreUnknown", () => {
  assert.equal(cniArgs("sb1", { podName: "web", podNamespace: "prod", podUid: "u-1" }),
    "IgnoreUnknown=1;K8S_POD_NAMESPACE=prod;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=sb1;K8S_POD_UID=u-1");
});

test("plugin env sets every CNI variable and drops stale ones from the daemon's env", () => {
  const env = pluginEnv({ command: "ADD", containerId: "sb1", netns: "/run/ns/x", ifName: "eth0", binDirs: ["/a", "/b"], cniArgs: "K=V" },
    { PATH: "/usr/bin", CNI_NETNS: "/stale", CNI_FOO: "x" });
  assert.deepEqual(env, {
    PATH: "/usr/bin", CNI_COMMAND: "ADD", CNI_PATH: "/a:/b", CNI_CONTAINERID: "sb1", CNI_NETNS: "/run/ns/x", CNI_IFNAME: "eth0", CNI_ARGS: "K=V",
  });
});

test("VERSION env has only the command and path", () => {
  const env = pluginEnv({ command: "VERSION", containerId: "", netns: "", ifName: "", binDirs: ["/a"], cniArgs: "" }, {});
  assert.deepEqual(env, { CNI_COMMAND: "VERSION", CNI_PATH: "/a" });
});

test("port mappings: lower-case protocol, hostIP default, enum numbers, no host port skipped", () => {
  assert.deepEqual(portMappingsArg([
    { protocol: "TCP", containerPort: 80, hostPort: 8080 },
    { protocol: "UDP", containerPort: 53, hostPort: 5353, hostIp: "127.0.0.1" },
    { protocol: 2, containerPort: 9, hostPort: 9 },
    { containerPort: 81, hostPort: 8081 },
    { protocol: "TCP", containerPort: 82, hostPort: 0 },
  ]), [
    { hostPort: 8080, containerPort: 80, protocol: "tcp", hostIP: "0.0.0.0" },
    { hostPort: 5353, containerPort: 53, protocol: "udp", hostIP: "127.0.0.1" },
    { hostPort: 9, containerPort: 9, protocol: "sctp", hostIP: "0.0.0.0" },
    { hostPort: 8081, containerPort: 81, protocol: "tcp", hostIP: "0.0.0.0" },
  ]);
  assert.equal(portMappingsArg([{ containerPort: 80, hostPort: 0 }]), undefined);
});

test("capability args leave out empty dns and bandwidth", () => {
  assert.deepEqual(capabilityArgs({ dns: {}, bandwidth: { ingressRate: 0 } }), {});
  assert.deepEqual(capabilityArgs({ dns: { servers: ["10.0.0.10"] }, bandwidth: { egressRate: 1000, ingressRate: 0 } }), {
    dns: { servers: ["10.0.0.10"], searches: [], options: [] },
    bandwidth: { egressRate: 1000 },
  });
});

test("runtimeConfig holds only the capabilities a plugin declares true", () => {
  const args = capabilityArgs({ portMappings: [{ containerPort: 80, hostPort: 8080 }], dns: { servers: ["1.1.1.1"] } });
  assert.equal(runtimeConfigFor({ type: "bridge" }, args), undefined);
  assert.deepEqual(runtimeConfigFor({ type: "portmap", capabilities: { portMappings: true, dns: false, bandwidth: true } }, args), {
    portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp", hostIP: "0.0.0.0" }],
  });
  assert.equal(runtimeConfigFor({ type: "portmap", capabilities: { portMappings: true } }, {}), undefined);
});

test("plugin stdin gets name, cniVersion, prevResult and filtered runtimeConfig", () => {
  const list = { name: "net", cniVersion: "1.0.0" };
  const args = capabilityArgs({ portMappings: [{ containerPort: 80, hostPort: 8080 }] });
  const prev = { cniVersion: "1.0.0", ips: [{ address: "10.0.0.2/24" }] };
  assert.deepEqual(JSON.parse(pluginStdin(list, { type: "portmap", capabilities: { portMappings: true }, snat: true }, args, prev)), {
    type: "portmap", capabilities: { portMappings: true }, snat: true, name: "net", cniVersion: "1.0.0",
    runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp", hostIP: "0.0.0.0" }] },
    prevResult: prev,
  });
  assert.deepEqual(JSON.parse(pluginStdin(list, { type: "bridge", name: "ignored", cniVersion: "0.1.0" }, args, undefined)), {
    type: "bridge", name: "net", cniVersion: "1.0.0",
  });
});
