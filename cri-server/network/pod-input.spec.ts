import { test } from "node:test";
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { PodSandboxConfigSchema } from "../../proto/gen/runtime/v1/api_pb.js";
import { BerthError, Code } from "../../oci-runtime/foundation/errdefs.ts";
import { cniArgs } from "./cni-invocation.ts";
import { renderHosts, renderResolvConf } from "./pod-files.ts";
import { validatePodInput } from "./pod-input.ts";

const pod = (over: Record<string, unknown> = {}) => create(PodSandboxConfigSchema, {
  metadata: { name: "web", namespace: "default", uid: "0d4c8f2e-1", attempt: 0 }, ...over,
} as never);
const invalid = (re: RegExp) => (e: unknown) => e instanceof BerthError && e.code === Code.INVALID_ARGUMENT && re.test(e.message);

test("a well-formed pod passes", () => {
  validatePodInput(pod({ dnsConfig: { servers: ["10.0.0.10", "fd00::a"], searches: ["default.svc.cluster.local"], options: ["ndots:5", "edns0"] }, portMappings: [{ hostIp: "127.0.0.1", hostPort: 80, containerPort: 80 }] }));
});

test("metadata with ';', '=' or control characters is refused (CNI_ARGS)", () => {
  assert.throws(() => validatePodInput(pod({ metadata: { name: "web", namespace: "a;K8S_POD_NAME=x", uid: "u" } })), invalid(/config\.metadata\.namespace .* CNI_ARGS/));
  assert.throws(() => validatePodInput(pod({ metadata: { name: "a=b", namespace: "n", uid: "u" } })), invalid(/config\.metadata\.name/));
  assert.throws(() => validatePodInput(pod({ metadata: { name: "a", namespace: "n", uid: "u\n" } })), invalid(/config\.metadata\.uid/));
  assert.throws(() => cniArgs("id", { podName: "a", podNamespace: "n;X=1", podUid: "u" }), invalid(/config\.metadata\.namespace/));
  assert.equal(cniArgs("id", { podName: "a", podNamespace: "n", podUid: "u" }), "IgnoreUnknown=1;K8S_POD_NAMESPACE=n;K8S_POD_NAME=a;K8S_POD_INFRA_CONTAINER_ID=id;K8S_POD_UID=u");
});

test("DNS words that would start another resolv.conf line or word are refused; counts are bounded", () => {
  const dns = (d: Record<string, unknown>) => pod({ dnsConfig: { servers: [], searches: [], options: [], ...d } });
  assert.throws(() => validatePodInput(dns({ searches: ["a\nnameserver 1.1.1.1"] })), invalid(/config\.dns_config\.searches\[0\]/));
  assert.throws(() => validatePodInput(dns({ searches: ["a b"] })), invalid(/whitespace/));
  assert.throws(() => validatePodInput(dns({ searches: ["a#b"] })), invalid(/searches\[0\]/));
  assert.throws(() => validatePodInput(dns({ searches: [""] })), invalid(/must not be empty/));
  assert.throws(() => validatePodInput(dns({ options: ["ndots:1\rsearch evil"] })), invalid(/config\.dns_config\.options\[0\]/));
  assert.throws(() => validatePodInput(dns({ servers: ["1.1.1.1 2.2.2.2"] })), invalid(/config\.dns_config\.servers\[0\]/));
  assert.throws(() => validatePodInput(dns({ searches: Array.from({ length: 33 }, (_, i) => `d${i}`) })), invalid(/limit of 32/));
  assert.throws(() => validatePodInput(dns({ searches: Array.from({ length: 10 }, () => "x".repeat(250)) })), invalid(/limit of 2048/));
  assert.throws(() => validatePodInput(dns({ servers: Array.from({ length: 17 }, () => "1.1.1.1") })), invalid(/limit of 16/));
  assert.throws(() => renderResolvConf({ searches: ["a\nb"] }), invalid(/searches\[0\]/));
  assert.throws(() => renderHosts("a\n1.2.3.4 evil", ["10.0.0.2"]), invalid(/invalid hostname/));
  assert.throws(() => renderHosts("a", ["10.0.0.2 evil"]), invalid(/pod IP/));
});

test("host_ip must be an IP; labels and annotations are bounded", () => {
  assert.throws(() => validatePodInput(pod({ portMappings: [{ hostIp: "0.0.0.0 -j ACCEPT", hostPort: 1, containerPort: 1 }] })), invalid(/config\.port_mappings\[0\]\.host_ip/));
  assert.throws(() => validatePodInput(pod({ annotations: { a: "x".repeat(256 * 1024) } })), invalid(/config\.annotations are larger than the limit of 262144 bytes/));
  assert.throws(() => validatePodInput(pod({ labels: { "": "x" } })), invalid(/config\.labels: keys must not be empty/));
});
