import { test } from "node:test";
import assert from "node:assert/strict";
import { BerthError, Code } from "../foundation/errdefs.ts";
import { newSpec } from "./default-spec.ts";
import { compose } from "./types.ts";
import { validateSysctls, withAnnotations, withCgroupsPath, withHostname, withReadonlyRootfs, withSysctls } from "./misc.ts";

const isInvalid = (e: unknown) => e instanceof BerthError && e.code === Code.INVALID_ARGUMENT;

test("small options set their fields", async () => {
  const s = await compose(newSpec("rootfs"), undefined, [withHostname("h"), withCgroupsPath("/kubepods/p/c"), withReadonlyRootfs(true),
    withAnnotations({ a: "1" }), withAnnotations({ b: "2" })]);
  assert.equal(s.hostname, "h");
  assert.equal(s.linux!.cgroupsPath, "/kubepods/p/c");
  assert.deepEqual(s.root, { path: "rootfs", readonly: true });
  assert.deepEqual(s.annotations, { a: "1", b: "2" });
  assert.throws(() => withHostname("x".repeat(65))(s, undefined), isInvalid);
});

test("namespaced sysctls pass; others are refused by name", () => {
  validateSysctls({ "net.ipv4.ip_forward": "1", "kernel.shmmax": "1", "kernel.msgmax": "1", "kernel.sem": "1 2 3 4", "fs.mqueue.msg_max": "1", "net/ipv4/conf/all/forwarding": "1" });
  assert.throws(() => validateSysctls({ "kernel.panic": "1" }), (e) => isInvalid(e) && /kernel\.panic/.test((e as Error).message));
  assert.throws(() => validateSysctls({ "vm.swappiness": "1" }), isInvalid);
});

test("sysctls conflicting with host namespaces are refused", () => {
  assert.throws(() => validateSysctls({ "net.ipv4.ip_forward": "1" }, { hostNetwork: true }), isInvalid);
  assert.throws(() => validateSysctls({ "kernel.shmmax": "1" }, { hostIpc: true }), isInvalid);
  validateSysctls({ "kernel.shmmax": "1" }, { hostNetwork: true });
});

test("withSysctls merges into linux.sysctl", async () => {
  const s = newSpec("r");
  await withSysctls({ "net.core.somaxconn": "1024" })(s, undefined);
  assert.deepEqual(s.linux!.sysctl, { "net.core.somaxconn": "1024" });
});
