// CDI devices: CDI_devices and cdi.k8s.io/* annotations resolve against specs (YAML and JSON)
// in cdi.spec_dirs; the device node (with its device-cgroup rule), mounts, env, hooks and
// additional GIDs reach the container; an unknown device is refused naming it and the dirs.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { codeOf, grpc } from "../lib/cri-client.ts";
import { podConfig, startPodEnv, type PodEnv } from "../lib/pod.ts";

describe("CDI devices", () => {
  let env: PodEnv;
  let dir = "";
  let podId = "";
  let podCfg: ReturnType<typeof podConfig>;
  let n = 0;
  const rt = () => env.b.client.runtime;
  const create = async (extra: Record<string, unknown>) => (await rt().createContainer({
    podSandboxId: podId, sandboxConfig: podCfg as never,
    config: { metadata: { name: `cdi${++n}` }, image: { image: env.images!.busybox }, command: ["sleep", "100000"], ...extra },
  })).containerId;
  const exec = async (id: string, cmd: string[]) => {
    const r = await rt().execSync({ containerId: id, cmd, timeout: 20n });
    return { out: Buffer.from(r.stdout).toString(), err: Buffer.from(r.stderr).toString(), code: r.exitCode };
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "berth-cdi-"));
    const specDir = join(dir, "cdi");
    await mkdir(specDir);
    await mkdir(join(dir, "data"));
    await writeFile(join(dir, "data", "file"), "cdi data\n");
    // The test's own device: a char node with /dev/null's numbers, under the test's directory.
    execFileSync("mknod", ["-m", "0666", join(dir, "berth-null"), "c", "1", "3"]);
    await writeFile(join(dir, "hook.sh"), `#!/bin/sh\ncat > ${join(dir, "hook-state.json")}\n`);
    await chmod(join(dir, "hook.sh"), 0o755);
    // A poststart hook: runc 1.1 runs it at the end of create, runc 1.2 and later in its own start
    // (which berth then uses instead of berth-start); either way it has run once StartContainer answers.
    await writeFile(join(dir, "poststart.sh"), `#!/bin/sh\ncat > ${join(dir, "poststart-state.json")}\n`);
    await chmod(join(dir, "poststart.sh"), 0o755);
    await writeFile(join(specDir, "vendor.yaml"), [
      "cdiVersion: 0.6.0",
      "kind: berth.test/dev",
      "devices:",
      "  - name: null0",
      "    containerEdits:",
      "      env: [CDI_DEV=null0]",
      "      deviceNodes:",
      `        - path: /dev/berth-null0`,
      `          hostPath: ${join(dir, "berth-null")}`,
      "containerEdits:",
      "  mounts:",
      `    - hostPath: ${join(dir, "data")}`,
      "      containerPath: /cdi-data",
      "      options: [rbind, ro]",
      "  hooks:",
      "    - hookName: createRuntime",
      `      path: ${join(dir, "hook.sh")}`,
      "    - hookName: poststart",
      `      path: ${join(dir, "poststart.sh")}`,
      "",
    ].join("\n"));
    await writeFile(join(specDir, "other.json"), JSON.stringify({
      cdiVersion: "0.6.0", kind: "berth.test/json",
      devices: [{ name: "one", containerEdits: { env: ["CDI_JSON=1"], additionalGIDs: [4242] } }],
    }));
    env = await startPodEnv({ images: true, toml: `[cdi]\nspec_dirs = [${JSON.stringify(specDir)}]\n` });
    await env.b.client.image.pullImage({ image: { image: env.images!.busybox } });
    podCfg = podConfig();
    podId = (await rt().runPodSandbox({ config: podCfg })).podSandboxId;
  });
  after(async () => {
    await env?.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  test("device nodes, mounts, env, hooks and GIDs from YAML and JSON specs reach the container", async () => {
    const id = await create({ CDIDevices: [{ name: "berth.test/dev=null0" }], annotations: { "cdi.k8s.io/test-plugin": "berth.test/json=one" } });
    await rt().startContainer({ containerId: id });
    const ls = await exec(id, ["ls", "-l", "/dev/berth-null0"]);
    assert.match(ls.out, /^crw-rw-rw-\s+1 root\s+root\s+1,\s+3 /, ls.out);
    assert.equal((await exec(id, ["sh", "-c", "echo x > /dev/berth-null0"])).code, 0, "the device cgroup allows the node");
    assert.equal((await exec(id, ["cat", "/cdi-data/file"])).out, "cdi data\n");
    assert.notEqual((await exec(id, ["touch", "/cdi-data/new"])).code, 0, "the spec's ro option holds");
    assert.equal((await exec(id, ["sh", "-c", "echo $CDI_DEV $CDI_JSON"])).out, "null0 1\n");
    assert.match((await exec(id, ["id", "-G"])).out, /\b4242\b/);
    const state = JSON.parse(readFileSync(join(dir, "hook-state.json"), "utf8")) as { id: string };
    assert.equal(state.id, id, "the createRuntime hook ran with the container's state");
    const post = JSON.parse(readFileSync(join(dir, "poststart-state.json"), "utf8")) as { id: string; status: string };
    assert.equal(post.id, id, "the poststart hook ran at StartContainer");
    await rt().removeContainer({ containerId: id });
  });

  test("an unknown or malformed device is INVALID_ARGUMENT naming it (and the spec dirs), and creates nothing", async () => {
    for (const [extra, name, withDir] of [
      [{ CDIDevices: [{ name: "berth.test/dev=nope" }] }, "berth.test/dev=nope", true],
      [{ annotations: { "cdi.k8s.io/x": "berth.test/none=zero" } }, "berth.test/none=zero", true],
      [{ CDIDevices: [{ name: "not-qualified" }] }, "not-qualified", false],
    ] as const) {
      await assert.rejects(create(extra), (e) => {
        assert.equal(codeOf(e), grpc.status.INVALID_ARGUMENT, String(e));
        assert.ok((e as Error).message.includes(JSON.stringify(name)), String(e));
        if (withDir) assert.ok((e as Error).message.includes(join(dir, "cdi")), String(e));
        return true;
      });
    }
    assert.deepEqual((await rt().listContainers({})).containers, []);
  });
});
