// Image volumes (KEP-4639): Mount.image mounts an already-pulled image's layers read-only
// (ro, nosuid, nodev, noexec) at the container path, image_sub_path picks a directory inside;
// a missing image is NOT_FOUND, a missing or escaping sub path INVALID_ARGUMENT; RemoveImage
// (and so kubelet's image GC) refuses an image in use as a volume.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, statSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { chmod, mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NamespaceMode } from "../../proto/gen/runtime/v1/api_pb.js";
import { codeOf, grpc } from "../lib/cri-client.ts";
import { mountsUnder } from "../lib/mounts.ts";
import { podConfig, startPodEnv, type PodEnv } from "../lib/pod.ts";
import { buildImage, layerBlob } from "../../hack/registry/oci-image.ts";
import { pushImage } from "../../hack/registry/push.ts";
import { buildTar } from "../../hack/registry/tar-writer.ts";

describe("image volumes", () => {
  let env: PodEnv;
  let podId = "";
  let podCfg: ReturnType<typeof podConfig>;
  let volImage = "";
  let n = 0;
  const rt = () => env.b.client.runtime;
  const img = () => env.b.client.image;

  async function create(mounts: Record<string, unknown>[]): Promise<string> {
    const { containerId } = await rt().createContainer({
      podSandboxId: podId, sandboxConfig: podCfg as never,
      config: { metadata: { name: `vol${++n}` }, image: { image: env.images!.busybox }, command: ["sleep", "100000"], mounts: mounts as never },
    });
    return containerId;
  }
  const exec = async (id: string, cmd: string[]) => {
    const r = await rt().execSync({ containerId: id, cmd, timeout: 20n });
    return { out: Buffer.from(r.stdout).toString(), err: Buffer.from(r.stderr).toString(), code: r.exitCode };
  };
  const volumeMounts = () => mountsUnder(env.b.state).filter((m) => m.includes("/image-volumes/") || m.includes("/userns/volumes/"));
  const leases = () => { try { return readdirSync(join(env.b.root, "images", "leases")).filter((f) => f.startsWith("volume-")); } catch { return []; } };

  before(async () => {
    // A user-namespaced container's root (host uid 200000) must be able to search the way to berth's state.
    const dir = await mkdtemp(join(tmpdir(), "berth-imgvol-"));
    await chmod(dir, 0o711);
    env = await startPodEnv({ images: true, dir });
    // Two layers: the second adds a file and replaces one of the first.
    const l1 = layerBlob(buildTar([
      { name: "dir", type: "dir", mode: 0o755 },
      { name: "dir/file", data: "1\n", mode: 0o644 },
      { name: "file", data: "old\n", mode: 0o644 },
      { name: "run.sh", data: "#!/bin/sh\necho ran\n", mode: 0o755 },
      { name: "suid", data: "x", mode: 0o4755 },
      { name: "inner", type: "symlink", linkname: "dir" },
      { name: "esc", type: "symlink", linkname: "/etc" },
      { name: "up", type: "symlink", linkname: "../../../../.." },
    ]), "gzip");
    const l2 = layerBlob(buildTar([
      { name: "file", data: "2\n", mode: 0o644 },
      { name: "file2", data: "layer two\n", mode: 0o644 },
    ]), "gzip");
    await pushImage({ address: env.images!.registry.address }, "berth-test/volume", "v1", buildImage([l1, l2], { Cmd: ["none"] }));
    volImage = `${env.images!.registry.address}/berth-test/volume:v1`;
    await img().pullImage({ image: { image: env.images!.busybox } });
    podCfg = podConfig();
    podId = (await rt().runPodSandbox({ config: podCfg })).podSandboxId;
  });
  after(async () => { await env?.cleanup(); });

  test("a missing image is NOT_FOUND naming it, and creates nothing", async () => {
    await assert.rejects(create([{ containerPath: "/vol", image: { image: volImage } }]), (e) => {
      assert.equal(codeOf(e), grpc.status.NOT_FOUND, String(e));
      assert.ok((e as Error).message.includes(volImage), String(e));
      return true;
    });
    assert.equal((await rt().listContainers({})).containers.length, 0);
  });

  test("the image's merged layers are mounted read-only, nosuid, nodev, noexec; a sub path picks a directory", async () => {
    await img().pullImage({ image: { image: volImage } });
    const id = await create([
      { containerPath: "/vol", image: { image: volImage }, readonly: true },
      { containerPath: "/sub", image: { image: volImage }, imageSubPath: "dir", readonly: true },
      { containerPath: "/via-link", image: { image: volImage }, imageSubPath: "inner" },
    ]);
    await rt().startContainer({ containerId: id });
    assert.deepEqual((await exec(id, ["cat", "/vol/file", "/vol/file2", "/vol/dir/file"])).out, "2\nlayer two\n1\n", "upper layer wins, both layers merged");
    assert.equal((await exec(id, ["cat", "/sub/file"])).out, "1\n");
    assert.equal((await exec(id, ["cat", "/via-link/file"])).out, "1\n", "a symlink inside the image is followed");
    const w = await exec(id, ["touch", "/vol/new"]);
    assert.notEqual(w.code, 0);
    assert.match(w.err, /Read-only file system/);
    const x = await exec(id, ["sh", "-c", "/vol/run.sh"]);
    assert.equal(x.code, 126, "noexec");
    assert.match(x.err, /Permission denied/);
    const mounts = (await exec(id, ["cat", "/proc/self/mounts"])).out.split("\n");
    for (const path of ["/vol", "/sub", "/via-link"]) {
      const line = mounts.find((l) => l.split(" ")[1] === path);
      assert.ok(line, `${path} is mounted:\n${mounts.join("\n")}`);
      const opts = line!.split(" ")[3]!.split(",");
      for (const o of ["ro", "nosuid", "nodev", "noexec"]) assert.ok(opts.includes(o), `${path} has ${o}: ${line}`);
    }
    assert.equal(volumeMounts().length, 3, "one host mount per image volume");

    // RemoveImage (kubelet's image GC calls it) refuses an image in use as a volume.
    await assert.rejects(img().removeImage({ image: { image: volImage } }), (e) => {
      assert.equal(codeOf(e), grpc.status.FAILED_PRECONDITION, String(e));
      assert.ok((e as Error).message.includes(id), String(e));
      return true;
    });
    assert.ok((await img().imageStatus({ image: { image: volImage } })).image, "the image is still there");

    await rt().stopContainer({ containerId: id, timeout: 0n });
    await rt().removeContainer({ containerId: id });
    assert.deepEqual(volumeMounts(), [], "RemoveContainer unmounts the volumes");
    assert.deepEqual(leases(), []);
    await img().removeImage({ image: { image: volImage } });
    assert.equal((await img().imageStatus({ image: { image: volImage } })).image, undefined);
  });

  test("in a pod with its own user namespace the volume's files keep their owners", async () => {
    await img().pullImage({ image: { image: volImage } });
    const ns = { usernsOptions: { mode: NamespaceMode.POD, uids: [{ containerId: 0, hostId: 200000, length: 65536 }], gids: [{ containerId: 0, hostId: 300000, length: 65536 }] } };
    const cfg = podConfig({ linux: { securityContext: { namespaceOptions: ns } } });
    const pod = (await rt().runPodSandbox({ config: cfg })).podSandboxId;
    const { containerId: id } = await rt().createContainer({
      podSandboxId: pod, sandboxConfig: cfg as never,
      config: {
        metadata: { name: "userns-vol" }, image: { image: env.images!.busybox }, command: ["sleep", "100000"],
        mounts: [{ containerPath: "/vol", image: { image: volImage }, imageSubPath: "dir" }] as never,
        linux: { securityContext: { namespaceOptions: ns } },
      },
    });
    await rt().startContainer({ containerId: id });
    assert.deepEqual(volumeMounts().map((m) => m.replace(env.b.state, "<state>").replace(id, "<id>")), ["<state>/userns/volumes/<id>/0"],
      "one host mount, where the container's root can reach it; the idmapped layer clone is gone");
    assert.equal((await exec(id, ["cat", "/proc/self/uid_map"])).out.trim().replace(/\s+/g, " "), "0 200000 65536", "the container runs in the pod's user namespace");
    assert.deepEqual([(await exec(id, ["stat", "-c", "%u:%g", "/vol/file"])).out, (await exec(id, ["cat", "/vol/file"])).out], ["0:0\n", "1\n"]);
    // The host user nobody can neither list nor read the volume; only the pod's root (and host root) enter.
    const vdir = join(env.b.state, "userns", "volumes", id);
    const probe = `const fs = require("node:fs"); const out = [];
      for (const f of [() => fs.readdirSync(process.argv[1]), () => fs.readdirSync(process.argv[1] + "/0"), () => fs.readFileSync(process.argv[1] + "/0/file")]) {
        try { f(); out.push("OK"); } catch (e) { out.push(e.code ?? String(e)); }
      }
      process.stdout.write(JSON.stringify(out));`;
    const r = spawnSync(process.execPath, ["-e", probe, vdir], { uid: 65534, gid: 65534, encoding: "utf8", timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), ["EACCES", "EACCES", "EACCES"], "nobody reaches nothing of the volume");
    const st = statSync(vdir);
    assert.deepEqual([st.mode & 0o777, st.uid, st.gid], [0o700, 200000, 300000], "the volume dir is the pod root's alone");
    assert.equal(statSync(join(env.b.state, "userns", "volumes")).mode & 0o777, 0o711);
    await rt().stopPodSandbox({ podSandboxId: pod });
    await rt().removePodSandbox({ podSandboxId: pod });
    assert.deepEqual(volumeMounts(), []);
    assert.deepEqual(leases(), []);
    await img().removeImage({ image: { image: volImage } });
  });

  test("a sub path that does not exist or leaves the image is INVALID_ARGUMENT, and creates nothing", async () => {
    await img().pullImage({ image: { image: volImage } });
    for (const [sub, why] of [["nope", /does not exist/], ["esc", /leaves image/], ["up", /leaves image/], ["../x", /\.\./], ["/dir", /relative/]] as const) {
      await assert.rejects(create([{ containerPath: "/vol", image: { image: volImage }, imageSubPath: sub }]), (e) => {
        assert.equal(codeOf(e), grpc.status.INVALID_ARGUMENT, `${sub}: ${e}`);
        assert.ok((e as Error).message.includes(JSON.stringify(sub)) && why.test((e as Error).message), String(e));
        return true;
      });
    }
    assert.equal((await rt().listContainers({})).containers.length, 0);
    assert.deepEqual(volumeMounts(), [], "every failed create unmounted its volumes");
    assert.deepEqual(leases(), [], "and dropped their leases");
    await img().removeImage({ image: { image: volImage } });
  });
});
