import { test } from "node:test";
import assert from "node:assert/strict";
import { Code, BerthError } from "../../oci-runtime/foundation/errdefs.ts";
import { normalizeSysctlName, sysctlNamespace, validateSysctls } from "./sysctl.ts";

const invalid = (re: RegExp) => (e: unknown) => e instanceof BerthError && e.code === Code.INVALID_ARGUMENT && re.test(e.message);

test("classifies namespaced sysctls", () => {
  assert.equal(sysctlNamespace("net.ipv4.ip_forward"), "net");
  assert.equal(sysctlNamespace("net.core.somaxconn"), "net");
  assert.equal(sysctlNamespace("kernel.shmmax"), "ipc");
  assert.equal(sysctlNamespace("kernel.shm_rmid_forced"), "ipc");
  assert.equal(sysctlNamespace("kernel.msgmax"), "ipc");
  assert.equal(sysctlNamespace("kernel.sem"), "ipc");
  assert.equal(sysctlNamespace("fs.mqueue.msg_max"), "ipc");
  assert.equal(sysctlNamespace("kernel.hostname"), "uts");
  assert.equal(sysctlNamespace("kernel.domainname"), "uts");
  assert.equal(sysctlNamespace("kernel.panic"), undefined);
  assert.equal(sysctlNamespace("vm.swappiness"), undefined);
  assert.equal(sysctlNamespace("kernel.semaphore"), undefined);
});

test("slash-separated names are normalised, dots in interface names kept", () => {
  assert.equal(normalizeSysctlName("net/ipv4/ip_forward"), "net.ipv4.ip_forward");
  assert.equal(normalizeSysctlName("net/ipv4/conf/eth0.100/rp_filter"), "net.ipv4.conf.eth0/100.rp_filter");
  assert.equal(normalizeSysctlName("net.ipv4.conf.eth0/100.rp_filter"), "net.ipv4.conf.eth0/100.rp_filter");
  assert.equal(normalizeSysctlName("kernel.shmmax"), "kernel.shmmax");
});

test("valid pod sysctls are returned with dotted names", () => {
  assert.deepEqual(validateSysctls({ "net/ipv4/ip_unprivileged_port_start": "0", "kernel.shmmax": "1000", "kernel.hostname": "x" }), {
    "net.ipv4.ip_unprivileged_port_start": "0", "kernel.shmmax": "1000", "kernel.hostname": "x",
  });
  assert.deepEqual(validateSysctls(new Map([["net.core.somaxconn", "1024"]])), { "net.core.somaxconn": "1024" });
  assert.deepEqual(validateSysctls(undefined), {});
});

test("non-namespaced sysctls are refused naming them", () => {
  assert.throws(() => validateSysctls({ "kernel.panic": "1" }), invalid(/sysctl "kernel.panic" is not namespaced/));
  assert.throws(() => validateSysctls({ "vm.overcommit_memory": "1" }), invalid(/"vm.overcommit_memory"/));
});

test("sysctls of namespaces shared with the host are refused naming them", () => {
  assert.throws(() => validateSysctls({ "net.ipv4.ip_forward": "1" }, { hostNetwork: true }), invalid(/sysctl "net.ipv4.ip_forward" .*host network/));
  assert.throws(() => validateSysctls({ "kernel.msgmax": "1" }, { hostIpc: true }), invalid(/sysctl "kernel.msgmax" .*host IPC/));
  assert.throws(() => validateSysctls({ "kernel.hostname": "x" }, { hostNetwork: true }), invalid(/host UTS/));
  assert.deepEqual(validateSysctls({ "kernel.msgmax": "1" }, { hostNetwork: true }), { "kernel.msgmax": "1" });
  assert.deepEqual(validateSysctls({ "net.ipv4.ip_forward": "1" }, { hostIpc: true }), { "net.ipv4.ip_forward": "1" });
});

test("malformed names and values are refused", () => {
  assert.throws(() => validateSysctls({ "net..ipv4": "1" }), invalid(/invalid sysctl name "net..ipv4"/));
  assert.throws(() => validateSysctls({ "": "1" }), invalid(/invalid sysctl name/));
  assert.throws(() => validateSysctls({ "net.ipv4.conf.a/../b.x": "1" }), invalid(/invalid sysctl name/));
  // "/" stands for "." inside a part: parts of only slashes would be "." or ".." path components.
  assert.throws(() => validateSysctls({ "net.//.//.kernel.core_pattern": "x" }), invalid(/invalid sysctl name "net\.\/\/\.\/\/\.kernel\.core_pattern"/));
  assert.throws(() => validateSysctls({ "net./.ipv4.ip_forward": "1" }), invalid(/invalid sysctl name/));
  assert.equal(validateSysctls({ "net.ipv4.conf.eth0/100.rp_filter": "1" })["net.ipv4.conf.eth0/100.rp_filter"], "1");
  assert.throws(() => validateSysctls({ "net.core.somaxconn": "1\n2" }), invalid(/invalid value for sysctl "net.core.somaxconn"/));
  assert.throws(() => validateSysctls({ "net/core/somaxconn": "1", "net.core.somaxconn": "2" }), invalid(/given twice/));
});
