import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { makeEnv, type ItestEnv } from "../internal/itest-env.ts";
import { containerCgroupsPath } from "../cgroups/paths.ts";
import { execSync } from "../runtime/exec-sync.ts";
import { buildInfraSpec, ensureInfraRootfs } from "./infra.ts";
import { withNamespaces } from "./namespaces.ts";
import { withProcessArgs } from "./process.ts";

let env: ItestEnv;
before(async () => { env = await makeEnv(); });
after(async () => { await env.cleanup(); });

test("the infra rootfs is built once and holds catatonit", async () => {
  const state = join(env.dir, "state");
  const a = await ensureInfraRootfs(state);
  const b = await ensureInfraRootfs(state);
  assert.equal(a, b);
  assert.ok((await readFile(join(a, "catatonit"))).length > 0);
});

test("concurrent builds of the infra rootfs agree and leave no temp dirs", async () => {
  const state = join(env.dir, "state-concurrent");
  const paths = await Promise.all([1, 2, 3].map(() => ensureInfraRootfs(state)));
  assert.equal(new Set(paths).size, 1);
  const { readdir } = await import("node:fs/promises");
  assert.deepEqual(await readdir(state), ["infra-rootfs"]);
  assert.ok((await readFile(join(paths[0]!, "catatonit"))).length > 0);
});

test("the infra (catatonit -P) holds the pod's namespaces and a container joins them", async () => {
  const rootfs = await ensureInfraRootfs(join(env.dir, "state"));
  const spec = await buildInfraSpec({ rootfs, hostname: "pod-x", sysctls: { "net.ipv4.ip_forward": "1" },
    cgroupsPath: containerCgroupsPath(env.cgroupParent, "infra") });
  const { pid } = await env.create("infra", [], { spec });
  await env.runtime.start("infra");
  assert.equal((await env.runtime.state("infra")).status, "running");
  assert.deepEqual((await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0").filter(Boolean), ["/catatonit", "-P"]);

  await env.create("member", [withProcessArgs({ command: ["sleep", "100000"] }), withNamespaces({ infraPid: pid, pid: "POD" })]);
  await env.runtime.start("member");
  const r = await execSync(env.runtime, "member", ["sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; hostname; cat /proc/sys/net/ipv4/ip_forward"]);
  assert.equal(r.stdout.toString(), "/catatonit -P \npod-x\n1\n");
  // the net namespace is the infra's, not the host's
  const hostNet = await import("node:fs/promises").then((fs) => fs.readlink("/proc/self/ns/net"));
  assert.notEqual(await import("node:fs/promises").then((fs) => fs.readlink(`/proc/${pid}/ns/net`)), hostNet);
});
