// Persisted records hold CRI messages in protobuf binary form, not protobuf JSON: no enum
// value names and no JSON field shapes on disk. A container and its pod survive a berthd
// restart with their config intact, and a record in the older JSON form is still read.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fromBinary, toJson } from "@bufbuild/protobuf";
import { ContainerConfigSchema, MountPropagation, Signal } from "../../proto/gen/runtime/v1/api_pb.js";
import { podConfig, startPodEnv, type PodEnv } from "../lib/pod.ts";

describe("persisted records", () => {
  let env: PodEnv;
  let podId = "";
  let ctr = "";
  const rt = () => env.b.client.runtime;
  const recordFile = () => join(env.b.root, "containers", `${ctr}.json`);

  before(async () => {
    env = await startPodEnv({ images: true });
    await env.b.client.image.pullImage({ image: { image: env.images!.busybox } });
    const cfg = podConfig();
    podId = (await rt().runPodSandbox({ config: cfg })).podSandboxId;
    ctr = (await rt().createContainer({
      podSandboxId: podId, sandboxConfig: cfg as never,
      config: {
        metadata: { name: "rec" }, image: { image: env.images!.busybox }, command: ["sleep", "100000"],
        envs: [{ key: "GREETING", value: new TextEncoder().encode("värde ✓") }],
        mounts: [{ containerPath: "/hostetc", hostPath: "/etc", readonly: true, propagation: MountPropagation.PROPAGATION_HOST_TO_CONTAINER }],
        stopSignal: Signal.SIGUSR1, labels: { keep: "me" },
      },
    })).containerId;
    await rt().startContainer({ containerId: ctr });
  });
  after(async () => { await env?.cleanup(); });

  const checkContainer = async () => {
    const st = (await rt().containerStatus({ containerId: ctr })).status!;
    assert.equal(st.state, 1, "running");
    assert.deepEqual(st.labels, { keep: "me" });
    assert.equal(st.mounts[0]!.propagation, MountPropagation.PROPAGATION_HOST_TO_CONTAINER);
    assert.equal(st.stopSignal, Signal.SIGUSR1);
    const r = await rt().execSync({ containerId: ctr, cmd: ["sh", "-c", "echo $GREETING"], timeout: 10n });
    assert.equal(Buffer.from(r.stdout).toString(), "värde ✓\n");
  };

  test("records on disk hold binary messages, without enum names", async () => {
    const text = readFileSync(recordFile(), "utf8");
    const rec = JSON.parse(text) as { config: { pb: string } };
    assert.equal(typeof rec.config.pb, "string");
    const cfg = fromBinary(ContainerConfigSchema, Buffer.from(rec.config.pb, "base64"));
    assert.equal(cfg.stopSignal, Signal.SIGUSR1);
    assert.doesNotMatch(text, /SIGNAL_|PROPAGATION_|NAMESPACE_MODE|"envs"/, "no proto enum names or JSON shapes in the record");
    const sandbox = readFileSync(join(env.b.root, "sandboxes", `${podId}.json`), "utf8");
    assert.match(sandbox, /"config": \{\n\s*"pb": "/);
  });

  test("the container survives a restart with its config; so does a record in the older JSON form", async () => {
    await env.b.restart();
    await checkContainer();
    // Rewrite the record as the previous berth wrote it (protobuf JSON), then restart again.
    await env.b.stop();
    const rec = JSON.parse(readFileSync(recordFile(), "utf8")) as { config: unknown };
    rec.config = toJson(ContainerConfigSchema, fromBinary(ContainerConfigSchema, Buffer.from((rec.config as { pb: string }).pb, "base64")));
    writeFileSync(recordFile(), JSON.stringify(rec));
    await env.b.restart();
    await checkContainer();
  });
});
