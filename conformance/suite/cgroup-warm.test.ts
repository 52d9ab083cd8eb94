// The cgroup-attach warm-up (oci-runtime/cgroups/attach-warm.ts) in a real berthd: before a
// container is created and before an exec, berthd writes its own pid into the cgroup it is in.
// berthd, placed in a cgroup of its own for the test, must stay exactly there through pod start
// and ExecSync, and the container must not land there.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { podConfig, startPodEnv, type PodEnv } from "../lib/pod.ts";
import { removeCgroupDirs } from "../lib/procs.ts";
import { detectCgroupLayout } from "../../oci-runtime/cgroups/mode.ts";

describe("cgroup-attach warm-up in berthd", () => {
  let env: PodEnv;
  let busybox: string;
  let dirs: string[] = [];
  const name = `berth-test-berthd-${randomBytes(4).toString("hex")}`;
  const c = () => env.b.client.runtime;
  const cgroupOf = (pid: number) => readFile(`/proc/${pid}/cgroup`, "utf8");

  before(async () => {
    env = await startPodEnv({ images: true });
    busybox = env.images!.busybox;
    await env.b.client.image.pullImage({ image: { image: busybox } });
    // berthd into a cgroup of its own, in the v2 tree and every v1 hierarchy but cpuset (whose
    // new cgroups have no cpus until set).
    const layout = await detectCgroupLayout();
    const roots = [...(layout.v2 ? [layout.v2] : []), ...layout.v1.filter((h) => !h.controllers.includes("cpuset")).map((h) => h.mountPoint)];
    for (const r of roots) {
      const d = join(r, name);
      await mkdir(d);
      dirs.push(d);
      await writeFile(join(d, "cgroup.procs"), String(env.b.proc.pid));
    }
  });
  after(async () => {
    await env?.cleanup();
    await removeCgroupDirs(dirs);
  });

  test("berthd stays in its cgroup through RunPodSandbox, CreateContainer, StartContainer and ExecSync; the container is elsewhere", async () => {
    const placed = await cgroupOf(env.b.proc.pid!);
    assert.equal(placed.split("\n").filter((l) => l.includes(name)).length, dirs.length, placed);
    const config = podConfig();
    const { podSandboxId } = await c().runPodSandbox({ config });
    const { containerId } = await c().createContainer({
      podSandboxId, sandboxConfig: config,
      config: { metadata: { name: "warm", attempt: 0 }, image: { image: busybox }, command: ["sleep", "3600"] },
    });
    await c().startContainer({ containerId });
    for (let i = 0; i < 3; i++) {
      const r = await c().execSync({ containerId, cmd: ["echo", `hi${i}`], timeout: 30n });
      assert.equal(Buffer.from(r.stdout).toString(), `hi${i}\n`);
    }
    assert.equal(await cgroupOf(env.b.proc.pid!), placed);
    const status = await c().containerStatus({ containerId, verbose: true });
    const pid = Number(JSON.parse(status.info["info"] ?? "{}").pid);
    assert.ok(pid > 0, `container pid from verbose status: ${status.info["info"]}`);
    assert.doesNotMatch(await cgroupOf(pid), new RegExp(name));
    await c().removePodSandbox({ podSandboxId });
    // The warm-up wrote each time: it never gave up (it says so once when it does).
    assert.doesNotMatch(env.b.stderr.join(""), /cgroup attach warm-up off/);
  });
});
