// Recursive read-only mounts (KEP-3857) over the real socket with real runc: a volume with a tmpfs
// mounted inside it is read-only in the container at every level, and stays writable on the host.
// Two handlers: "runc" (its own "rro" mount option, listed by `runc features`) and "norro", the
// same runc behind a wrapper whose `features` hide "rro", so berth makes the recursive read-only
// clone itself (mount_setattr in berth-mount). Plus the refusals critest expects.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { codeOf, grpc } from "../lib/cri-client.ts";
import { mountsUnder } from "../lib/mounts.ts";
import { podConfig, startPodEnv, type PodEnv } from "../lib/pod.ts";

const MountPropagation = { PRIVATE: 0, HOST_TO_CONTAINER: 1, BIDIRECTIONAL: 2 } as const;

describe("recursive read-only mounts", () => {
  let env: PodEnv;
  let busybox: string;
  let dir: string;
  let vol: string;
  const c = () => env.b.client.runtime;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "berth-rro-"));
    // runc whose `features` omit "rro": berth must make the recursive read-only mount itself.
    const wrapper = join(dir, "runc-norro");
    const runc = execFileSync("sh", ["-c", "command -v runc"], { encoding: "utf8" }).trim();
    await writeFile(wrapper, `#!/bin/sh\nfor a in "$@"; do if [ "$a" = features ]; then ${runc} "$@" | grep -v '^ *"rro",$'; exit 0; fi; done\nexec ${runc} "$@"\n`);
    await chmod(wrapper, 0o755);
    env = await startPodEnv({ images: true, toml: `[runtime.handlers.norro]\nbinary = "${wrapper}"\n` });
    busybox = env.images!.busybox;
    await env.b.client.image.pullImage({ image: { image: busybox } });
    // The volume: a directory with a tmpfs mounted inside it.
    vol = join(dir, "vol");
    await mkdir(join(vol, "sub"), { recursive: true });
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", join(vol, "sub")]);
  });

  after(async () => {
    await env?.cleanup();
    if (vol) try { execFileSync("umount", [join(vol, "sub")]); } catch { /* not mounted */ }
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const runPod = async (handler: string) => {
    const config = podConfig();
    const { podSandboxId } = await c().runPodSandbox({ config, runtimeHandler: handler });
    return { id: podSandboxId, config };
  };
  const create = (pod: { id: string; config: ReturnType<typeof podConfig> }, mounts: unknown[]) => c().createContainer({
    podSandboxId: pod.id,
    sandboxConfig: pod.config,
    config: {
      metadata: { name: `c-${Math.random().toString(16).slice(2, 10)}`, attempt: 0 },
      image: { image: busybox },
      command: ["sleep", "3600"],
      mounts: mounts as never,
    },
  });
  const sh = async (id: string, script: string) => {
    const r = await c().execSync({ containerId: id, cmd: ["sh", "-c", script], timeout: 30n });
    return { out: Buffer.from(r.stdout).toString(), err: Buffer.from(r.stderr).toString(), code: r.exitCode };
  };

  test("Status advertises recursive read-only mounts for both handlers (runc's own option; berth's clone for norro)", async () => {
    const st = await c().status({ verbose: false });
    for (const name of ["runc", "norro", ""]) {
      assert.equal(st.runtimeHandlers.find((h) => h.name === name)?.features?.recursiveReadOnlyMounts, true, name);
    }
  });

  for (const handler of ["runc", "norro"]) {
    test(`${handler}: every level of an rro volume is read-only inside and writable on the host; plain ro leaves the submount writable`, async () => {
      const pod = await runPod(handler);
      const { containerId: id } = await create(pod, [
        { containerPath: "/rro", hostPath: vol, readonly: true, recursiveReadOnly: true },
        { containerPath: "/ro", hostPath: vol, readonly: true },
      ]);
      const spec = JSON.parse(await readFile(join(env.b.state, "containers", id, "config.json"), "utf8")) as { mounts: { destination: string; source: string; options: string[] }[] };
      const rro = spec.mounts.find((m) => m.destination === "/rro")!;
      if (handler === "runc") {
        assert.ok(rro.options.includes("rro"), `runc applies its own rro: ${rro.options.join(",")}`);
        assert.equal(rro.source, vol);
      } else {
        assert.ok(!rro.options.includes("rro") && rro.options.includes("ro"), `berth's clone, bound ro: ${rro.options.join(",")}`);
        assert.ok(rro.source.startsWith(join(env.b.state, "userns", "containers", id)), rro.source);
        // Released once runc created the container (its mount namespace holds the copy).
        assert.deepEqual(mountsUnder(join(env.b.state, "userns")), []);
      }
      await c().startContainer({ containerId: id });
      for (const path of ["/rro/top", "/rro/sub/nested"]) {
        const r = await sh(id, `touch ${path}`);
        assert.notEqual(r.code, 0, `${path} must not be writable`);
        assert.match(r.err, /Read-only file system/, path);
      }
      const mi = (await sh(id, "cat /proc/self/mountinfo")).out.split("\n");
      assert.match(mi.find((l) => l.split(" ")[4] === "/rro/sub") ?? "", / ro[, ]/, "the nested tmpfs is mounted read-only");
      // Without recursive_read_only the submount keeps its own (writable) flags: what rro is for.
      assert.equal((await sh(id, "touch /ro/sub/plain-ro && echo ok")).out.trim(), "ok");
      assert.notEqual((await sh(id, "touch /ro/top")).code, 0);
      // The host's mounts are untouched.
      await writeFile(join(vol, `host-top-${handler}`), "x");
      await writeFile(join(vol, "sub", `host-nested-${handler}`), "x");
      assert.equal((await sh(id, `cat /rro/sub/host-nested-${handler}`)).code, 0);
      await c().removePodSandbox({ podSandboxId: pod.id });
      assert.deepEqual(mountsUnder(join(env.b.state, "userns")), []);
    });
  }

  describe("refusals: INVALID_ARGUMENT naming the field, and no container", () => {
    let pod: { id: string; config: ReturnType<typeof podConfig> };
    before(async () => { pod = await runPod("runc"); });
    const refused = async (mount: Record<string, unknown>, re: RegExp) => {
      await assert.rejects(create(pod, [{ containerPath: "/mnt", hostPath: vol, recursiveReadOnly: true, ...mount }]), (e) => {
        assert.equal(codeOf(e), grpc.status.INVALID_ARGUMENT, (e as Error).message);
        assert.match((e as Error).message, /recursive_read_only/);
        assert.match((e as Error).message, re);
        return true;
      });
      assert.equal((await c().listContainers({ filter: { podSandboxId: pod.id } })).containers.length, 0);
    };
    test("readonly false", () => refused({ readonly: false }, /requires readonly to be true/));
    test("propagation HOST_TO_CONTAINER", () => refused({ readonly: true, propagation: MountPropagation.HOST_TO_CONTAINER }, /private propagation, got PROPAGATION_HOST_TO_CONTAINER/));
    test("propagation BIDIRECTIONAL", () => refused({ readonly: true, propagation: MountPropagation.BIDIRECTIONAL }, /private propagation, got PROPAGATION_BIDIRECTIONAL/));
  });
});
