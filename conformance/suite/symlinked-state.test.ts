// A berthd whose root and state are given through a symlink (state = "/var/run/berth" with
// /var/run -> /run is the common case): mountinfo names only real paths, so berthd must resolve
// them, or it finds none of its own mounts: removal hits EBUSY and mounts are left behind.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { chmod, mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NamespaceMode } from "../../proto/gen/runtime/v1/api_pb.js";
import { mountsUnder, unmountUnder } from "../lib/mounts.ts";
import { podConfig, startPodEnv, type PodEnv } from "../lib/pod.ts";

describe("root and state given through a symlink", () => {
  let env: PodEnv;
  let real = "";
  let link = "";

  before(async () => {
    real = await mkdtemp(join(tmpdir(), "berth-symstate-"));
    await chmod(real, 0o711); // the pod's root (host uid 200000) searches its way to its clones
    link = `${real}-link`;
    await symlink(real, link);
    env = await startPodEnv({ images: true, dir: link });
    await env.b.client.image.pullImage({ image: { image: env.images!.busybox } });
  });
  after(async () => {
    await env?.cleanup();
    unmountUnder(real);
    await rm(link, { force: true });
    await rm(real, { recursive: true, force: true });
  });

  test("a user-namespaced pod with a container runs, and removing it leaves no mount and no directory", async () => {
    const rt = env.b.client.runtime;
    const ns = { usernsOptions: { mode: NamespaceMode.POD, uids: [{ containerId: 0, hostId: 200000, length: 65536 }], gids: [{ containerId: 0, hostId: 300000, length: 65536 }] } };
    const cfg = podConfig({ linux: { securityContext: { namespaceOptions: ns } } });
    const pod = (await rt.runPodSandbox({ config: cfg })).podSandboxId;
    const { containerId: id } = await rt.createContainer({
      podSandboxId: pod, sandboxConfig: cfg as never,
      config: { metadata: { name: "c" }, image: { image: env.images!.busybox }, command: ["sleep", "100000"], linux: { securityContext: { namespaceOptions: ns } } },
    });
    await rt.startContainer({ containerId: id });
    const r = await rt.execSync({ containerId: id, cmd: ["cat", "/proc/self/uid_map"], timeout: 20n });
    assert.equal(Buffer.from(r.stdout).toString().trim().replace(/\s+/g, " "), "0 200000 65536");
    assert.ok(mountsUnder(join(real, "state", "userns")).length > 0, "the pod's pins and clones are mounted under the real state dir");
    await rt.stopPodSandbox({ podSandboxId: pod });
    await rt.removePodSandbox({ podSandboxId: pod });
    assert.deepEqual(mountsUnder(join(real, "state", "userns")), [], "no pin or clone left");
    assert.deepEqual(mountsUnder(join(real, "root", "snapshots")), [], "no rootfs left");
    assert.ok(!existsSync(join(real, "state", "userns", "pods", pod)), "the pod's userns dir is gone");
    assert.ok(!existsSync(join(real, "state", "userns", "containers", id)), "the container's mounts dir is gone");
    assert.equal((await rt.listPodSandbox({})).items.length, 0);
  });
});
