// cgroup_parent over the real socket: oci-runtime's one cgroup-path builder places the infra
// process, every container and every conmon under the pod's parent (<parent>/berth-<id>,
// <parent>/berth-conmon-<id>), folds a relative or doubled-slash parent to the same absolute
// path, and refuses a parent that escapes with INVALID_ARGUMENT naming the field, creating nothing.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { detectCgroupLayout, type CgroupLayout } from "../../oci-runtime/cgroups/mode.ts";
import { cgroupDirs, removeCgroup } from "../../oci-runtime/cgroups/paths.ts";
import { cgroupsOf } from "../../oci-runtime/monitor/conmon-cgroup.ts";
import { NamespaceMode } from "../../proto/gen/runtime/v1/api_pb.js";
import { codeOf, grpc } from "../lib/cri-client.ts";
import { podConfig, startPodEnv, type PodEnv } from "../lib/pod.ts";

describe("cgroup_parent", () => {
  let env: PodEnv;
  let layout: CgroupLayout;
  const tag = randomBytes(4).toString("hex");
  const parent = `/berth-cgparent-${tag}`;
  const rt = () => env.b.client.runtime;

  before(async () => {
    layout = await detectCgroupLayout();
    env = await startPodEnv({ images: true });
    await env.b.client.image.pullImage({ image: { image: env.images!.busybox } });
  });
  after(async () => {
    await env?.cleanup();
    const left = await removeCgroup(layout, parent);
    assert.deepEqual(left, [], `the test's cgroup parent ${parent} is removed`);
  });

  test("a relative parent with doubled slashes: infra, container and conmon all land under /<parent>/", async () => {
    const cfg = podConfig({ linux: { cgroupParent: `${parent.slice(1)}//pod1/`, securityContext: { namespaceOptions: { pid: NamespaceMode.POD } } } });
    const podId = (await rt().runPodSandbox({ config: cfg })).podSandboxId;
    const st = await rt().podSandboxStatus({ podSandboxId: podId, verbose: true });
    const infraPid = JSON.parse(st.info["info"]!).pid as number;
    const infraCg = await cgroupsOf(infraPid);
    assert.equal(infraCg.get("pids") ?? infraCg.get(""), `${parent}/pod1/berth-${podId}`, "the infra process is in <parent>/berth-<pod id>");
    const { containerId } = await rt().createContainer({
      podSandboxId: podId, sandboxConfig: cfg as never,
      config: { metadata: { name: "sleeper" }, image: { image: env.images!.busybox }, command: ["sleep", "100000"] },
    });
    await rt().startContainer({ containerId });
    const cst = await rt().containerStatus({ containerId, verbose: true });
    const info = JSON.parse(cst.info["info"]!) as { pid: number; runtimeSpec?: { linux?: { cgroupsPath?: string } } };
    const ctrCg = await cgroupsOf(info.pid);
    assert.equal(ctrCg.get("pids") ?? ctrCg.get(""), `${parent}/pod1/berth-${containerId}`, "the container is in <parent>/berth-<container id>");
    const conmonPid = Number((await import("node:fs")).readFileSync(join(env.b.state, "containers", containerId, "conmon.pid"), "utf8").trim());
    const conmonCg = await cgroupsOf(conmonPid);
    assert.equal(conmonCg.get("pids") ?? conmonCg.get(""), `${parent}/pod1/berth-conmon-${containerId}`, "its conmon is in <parent>/berth-conmon-<container id>");
    // Pod stats read the same, normalised parent.
    const stats = (await rt().podSandboxStats({ podSandboxId: podId })).stats!;
    assert.ok((stats.linux?.memory?.workingSetBytes?.value ?? 0n) > 0n, "pod stats come from the pod's cgroup");
    await rt().stopPodSandbox({ podSandboxId: podId });
    await rt().removePodSandbox({ podSandboxId: podId });
    for (const id of [podId, containerId]) {
      for (const dir of cgroupDirs(layout, `${parent}/pod1/berth-${id}`)) assert.ok(!existsSync(dir), `${dir} is removed with its owner`);
    }
  });

  test("a parent that escapes, names a slice or the root, or carries NUL is refused naming cgroup_parent, and nothing is created", async () => {
    const escapeLeaf = `berth-cgescape-${tag}`;
    const sandboxesBefore = readdirSync(join(env.b.state, "sandboxes")).length;
    const netnsBefore = readdirSync(join(env.b.state, "netns")).length;
    const podsBefore = (await rt().listPodSandbox({})).items.length;
    const cases = [
      `${parent}/../../${escapeLeaf}`,
      `../${escapeLeaf}`,
      `${parent}/./x`,
      "/",
      "kubepods-besteffort.slice",
      `${parent}/a\u0000b`,
      `${parent}/${"x".repeat(300)}`,
    ];
    for (const bad of cases) {
      await assert.rejects(rt().runPodSandbox({ config: podConfig({ linux: { cgroupParent: bad } }) }), (e) => {
        assert.equal(codeOf(e), grpc.status.INVALID_ARGUMENT, `${JSON.stringify(bad)}: ${String(e)}`);
        assert.match((e as Error).message, /config\.linux\.cgroup_parent/);
        return true;
      });
    }
    assert.equal((await rt().listPodSandbox({})).items.length, podsBefore, "no sandbox record");
    assert.equal(readdirSync(join(env.b.state, "sandboxes")).length, sandboxesBefore, "no pod directory");
    assert.equal(readdirSync(join(env.b.state, "netns")).length, netnsBefore, "no network namespace");
    for (const dir of cgroupDirs(layout, `/${escapeLeaf}`)) assert.ok(!existsSync(dir), `no cgroup at the escape target ${dir}`);
  });
});
