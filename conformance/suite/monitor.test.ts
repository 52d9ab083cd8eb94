// runtime.monitor over the real socket: each monitor berth supports (berth's own berth-monitor, the
// default, and conmon) runs a pod's container, writes its log and records its exit; a monitor
// binary that is missing makes RuntimeReady false, naming it.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { ContainerState } from "../../proto/gen/runtime/v1/api_pb.js";
import { startBerthd } from "../lib/berthd.ts";
import { podConfig, startPodEnv, type PodEnv } from "../lib/pod.ts";

for (const [monitor, comm] of [["berth", "berth-monitor"], ["conmon", "conmon"]] as const) {
  describe(`runtime.monitor = "${monitor}"`, () => {
    let env: PodEnv;
    const rt = () => env.b.client.runtime;
    before(async () => {
      env = await startPodEnv({ images: true, toml: `[runtime]\nmonitor = "${monitor}"\n` });
      await env.b.client.image.pullImage({ image: { image: env.images!.busybox } });
    });
    after(async () => { await env.cleanup(); });

    test(`a container runs under ${comm}: its log, its exit code, and berthd's kill -9 survived`, async () => {
      const cfg = podConfig();
      const podId = (await rt().runPodSandbox({ config: cfg })).podSandboxId;
      const { containerId: id } = await rt().createContainer({
        podSandboxId: podId, sandboxConfig: cfg as never,
        config: { metadata: { name: "mon" }, image: { image: env.images!.busybox }, command: ["sh", "-c", "echo hello-from-$0; trap 'exit 7' TERM; while true; do sleep 0.1; done", monitor] },
      });
      await rt().startContainer({ containerId: id });
      const info = JSON.parse((await rt().containerStatus({ containerId: id, verbose: true })).info["info"]!) as { conmonPid: number };
      assert.equal((await readFile(`/proc/${info.conmonPid}/comm`, "utf8")).trim(), comm);

      await env.b.kill9();
      await env.b.restart();
      assert.equal((await rt().containerStatus({ containerId: id })).status!.state, ContainerState.CONTAINER_RUNNING);

      await rt().stopContainer({ containerId: id, timeout: 10n });
      const st = (await rt().containerStatus({ containerId: id })).status!;
      assert.equal(st.state, ContainerState.CONTAINER_EXITED);
      assert.equal(st.exitCode, 7);
      const log = await readFile(st.logPath || join(env.b.state, "containers", id, "container.log"), "utf8");
      assert.match(log, new RegExp(`^\\S+ stdout F hello-from-${monitor}$`, "m"));
      await rt().removePodSandbox({ podSandboxId: podId });
    });
  });
}

describe("a missing monitor binary", () => {
  test("RuntimeReady is false, naming the binary and runtime.monitor", async () => {
    const b = await startBerthd({ toml: '[runtime]\nmonitor = "conmon"\nconmon = "/nonexistent/conmon"\n' });
    try {
      const cond = (await b.client.runtime.status({})).status!.conditions.find((c) => c.type === "RuntimeReady")!;
      assert.equal(cond.status, false);
      assert.match(cond.message, /\/nonexistent\/conmon.*runtime\.monitor = "conmon"/);
    } finally {
      await b.cleanup();
    }
  });
});
