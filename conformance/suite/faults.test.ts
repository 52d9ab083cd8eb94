// Fault suites: malformed requests, failing and hanging CNI plugins, a failing OCI
// runtime, kill -9 during concurrent pod starts, a full disk during a pull. Each
// must answer with an error (berthd stays up) and leave nothing behind.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NamespaceMode } from "../../proto/gen/runtime/v1/api_pb.js";
import { codeOf, grpc } from "../lib/cri-client.ts";
import { podConfig, startPodEnv, type PodEnv } from "../lib/pod.ts";
import { startBerthd, unmountUnder } from "../lib/berthd.ts";
import { startTestImages } from "../lib/images.ts";

const ls = (dir: string) => { try { return readdirSync(dir); } catch { return []; } };
const mountsUnder = async (dir: string) => (await readFile("/proc/self/mountinfo", "utf8")).split("\n").filter((l) => l.split(" ")[4]?.startsWith(dir)).length;
const catatonits = (dir: string) => spawnSync("pgrep", ["-f", "catatonit"], { encoding: "utf8" }).stdout.split("\n").filter(Boolean)
  .filter((pid) => { try { return spawnSync("cat", [`/proc/${pid}/cgroup`], { encoding: "utf8" }).stdout.length > 0 && dir.length > 0; } catch { return false; } }).length;

describe("malformed requests", () => {
  let env: PodEnv;
  before(async () => { env = await startPodEnv(); });
  after(async () => { await env.cleanup(); });

  test("a hundred malformed requests each get an error code and berthd stays up", async () => {
    const c = env.b.client.runtime;
    const i = env.b.client.image;
    const huge = "x".repeat(1 << 20);
    const calls: (() => Promise<unknown>)[] = [
      () => c.runPodSandbox({}),
      () => c.runPodSandbox({ config: { metadata: { name: huge, namespace: "n", uid: "u" } } }),
      () => c.runPodSandbox({ config: { metadata: { name: "a/b", namespace: "n", uid: "u" }, hostname: "bad host name!" } }),
      () => c.runPodSandbox({ config: podConfig({ linux: { securityContext: { namespaceOptions: { network: 99 } } } }) }),
      () => c.runPodSandbox({ config: podConfig({ portMappings: [{ protocol: 7, containerPort: 70000, hostPort: -1 }] }) }),
      () => c.createContainer({}),
      () => c.createContainer({ podSandboxId: "nope" }),
      () => c.createContainer({ podSandboxId: huge, config: { metadata: { name: "x" }, image: { image: "busybox" } } }),
      () => c.startContainer({ containerId: "" }),
      () => c.startContainer({ containerId: huge }),
      () => c.containerStatus({ containerId: "../../etc" }),
      () => c.podSandboxStatus({ podSandboxId: "" }),
      () => c.execSync({ containerId: "nope", cmd: [] }),
      () => c.execSync({ containerId: "nope", cmd: ["true"], timeout: -5n }),
      () => c.stopContainer({ containerId: "x", timeout: -1n }),
      () => c.updateRuntimeConfig({ runtimeConfig: { networkConfig: { podCidr: huge } } }),
      () => c.reopenContainerLog({ containerId: "nope" }),
      () => c.updateContainerResources({ containerId: "nope" }),
      () => i.pullImage({}),
      () => i.pullImage({ image: { image: huge } }),
      () => i.pullImage({ image: { image: "::::" } }),
      () => i.pullImage({ image: { image: "busybox@sha256:zz" } }),
      () => i.imageStatus({ image: { image: "" } }),
      () => i.removeImage({ image: { image: "" } }),
    ];
    let n = 0;
    for (let round = 0; n < 100; round++) {
      for (const call of calls) {
        if (n++ >= 100) break;
        await assert.rejects(call(), (e) => {
          if (process.env.BERTH_DEBUG) console.log(n, String(e).slice(0, 200));
          const code = codeOf(e);
          assert.ok(code !== undefined && code !== grpc.status.OK && code !== grpc.status.UNAVAILABLE, `call ${n} answered ${String(e)}`);
          assert.ok(!/internal error \(request/.test((e as Error).message) || code === grpc.status.INTERNAL);
          return true;
        });
      }
    }
    assert.equal((await c.version({})).runtimeName, "berth");
    assert.equal((await c.listPodSandbox({})).items.length, 0, "nothing was created");
  });
});

describe("failing components roll back", () => {
  let env: PodEnv;
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "berth-fault-"));
    const broken = join(dir, "broken-runtime");
    await writeFile(broken, `#!/bin/sh\nfor a in "$@"; do case "$a" in create|run) echo '{"level":"error","msg":"injected runtime failure: out of unicorns"}' >&2; exit 1;; esac; done\nexec runc "$@"\n`);
    await chmod(broken, 0o755);
    env = await startPodEnv({ toml: `[runtime.handlers.broken]\nbinary = "${broken}"\n` });
    await writeFile(join(dir, "toml"), "");
  });
  after(async () => { await env.cleanup(); await rm(dir, { recursive: true, force: true }); });

  test("an OCI runtime that fails: the runtime's message reaches the client, nothing is left", async () => {
    const c = env.b.client.runtime;
    const leases = await env.net.leases();
    // pid POD: the pod needs an infra process, so RunPodSandbox calls the runtime.
    await assert.rejects(c.runPodSandbox({ config: podConfig({ linux: { securityContext: { namespaceOptions: { pid: NamespaceMode.POD } } } }), runtimeHandler: "broken" }), (e) => {
      assert.match((e as Error).message, /infra process/);
      return true;
    });
    assert.deepEqual(await env.net.leases(), leases, "no IP lease leaked");
    assert.equal(ls(join(env.b.state, "netns")).length, 0, "no netns leaked");
    assert.equal(ls(join(env.b.state, "sandboxes")).length, 0, "no pod dir leaked");
    assert.equal(await mountsUnder(join(env.b.state, "sandboxes")), 0, "no shm mount leaked");
    assert.equal((await c.listPodSandbox({})).items.length, 0);
  });

  test("a CNI plugin that hangs is killed after plugin_timeout and the pod is rolled back", async () => {
    await env.b.stop();
    await writeFile(env.b.configPath, (await readFile(env.b.configPath, "utf8")).replace("[cni]\n", "[cni]\nplugin_timeout = 2\n"));
    await env.net.writePlugin("hanger", `#!/bin/sh\ncat >/dev/null\nif [ "$CNI_COMMAND" = VERSION ]; then echo '{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}'; exit 0; fi\nif [ "$CNI_COMMAND" = ADD ]; then sleep 600; fi\nexit 0\n`);
    await env.net.writeConflist({ extraPlugins: [{ type: "hanger" }] });
    await env.b.restart();
    const c = env.b.client.runtime;
    try {
      const start = Date.now();
      await assert.rejects(c.runPodSandbox({ config: podConfig() }), (e) => {
        assert.equal(codeOf(e), grpc.status.DEADLINE_EXCEEDED, String(e));
        assert.match((e as Error).message, /hanger/);
        return true;
      });
      assert.ok(Date.now() - start < 60_000);
      assert.deepEqual(await env.net.leases(), []);
      assert.equal(ls(join(env.b.state, "netns")).length, 0);
      assert.equal(spawnSync("pgrep", ["-f", "hanger"]).status, 1, "the hanging plugin was killed");
    } finally {
      await env.net.writeConflist();
    }
  });
});

describe("kill -9 during concurrent pod starts", () => {
  test("after restart every pod is either ready and reported or cleaned up", async () => {
    const env = await startPodEnv();
    try {
      const c = env.b.client.runtime;
      // Both kinds: every other pod shares a PID namespace (an infra process), the rest have none.
      const starts = Array.from({ length: 20 }, (_, i) => c.runPodSandbox({ config: podConfig(i % 2 ? {} : { linux: { securityContext: { namespaceOptions: { pid: NamespaceMode.POD } } } }) }).then((r) => r.podSandboxId, () => ""));
      // Kill as soon as the first pods are ready, with the rest in flight.
      await Promise.race([Promise.any(starts.map((s) => s.then((id) => id || Promise.reject(new Error("failed"))))).catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
      await env.b.kill9();
      await Promise.all(starts);
      await env.b.restart();
      const c2 = env.b.client.runtime;
      const pods = (await c2.listPodSandbox({})).items;
      for (const p of pods) {
        const st = await c2.podSandboxStatus({ podSandboxId: p.id, verbose: true });
        if (st.status!.state === 0) {
          const info = JSON.parse(st.info["info"]!);
          if (info.pins) assert.equal(spawnSync("stat", ["-f", "-c", "%T", info.pins.ipc, info.pins.uts], { encoding: "utf8" }).stdout, "nsfs\nnsfs\n", `ready pod ${p.id} has its pinned namespaces`);
          else assert.ok(info.pid > 0 && spawnSync("kill", ["-0", String(info.pid)]).status === 0, `ready pod ${p.id} has its infra process`);
        }
      }
      const netns = ls(join(env.b.state, "netns"));
      const ready = pods.filter((p) => p.state === 0).length;
      assert.ok(netns.length <= pods.length, `netns (${netns.length}) belong to listed pods (${pods.length}, ${ready} ready)`);
      for (const p of pods) await c2.removePodSandbox({ podSandboxId: p.id });
      assert.equal(ls(join(env.b.state, "netns")).length, 0, "no netns left");
      assert.deepEqual(await env.net.leases(), [], "no IP lease left");
      assert.equal(await mountsUnder(join(env.b.state, "sandboxes")), 0, "no shm mounts left");
      const runcList = spawnSync("runc", ["--root", join(env.b.state, "runc"), "list", "-q"], { encoding: "utf8" }).stdout.trim();
      assert.equal(runcList, "", "no runtime containers left");
      void catatonits;
    } finally {
      await env.cleanup();
    }
  });
});

describe("full disk during a pull", () => {
  test("a pull onto a full filesystem fails clearly, leaves no image, and berthd stays up", async () => {
    const imgs = await startTestImages();
    const dir = await mkdtemp(join(tmpdir(), "berth-fulldisk-"));
    const fsImg = join(dir, "fs.img");
    const mnt = join(dir, "mnt");
    try {
      spawnSync("truncate", ["-s", "3M", fsImg]);
      assert.equal(spawnSync("mkfs.ext4", ["-q", "-F", fsImg]).status, 0, "mkfs.ext4");
      await (await import("node:fs/promises")).mkdir(mnt);
      assert.equal(spawnSync("mount", ["-o", "loop", fsImg, mnt]).status, 0, "loop mount");
      const b = await startBerthd({ root: `${mnt}/root`, toml: `[registry]\nconfig_path = "${imgs.hostsDir}"\nstall_timeout = 10\n` });
      try {
        await assert.rejects(b.client.image.pullImage({ image: { image: imgs.busybox } }), (e) => {
          assert.notEqual(codeOf(e), grpc.status.OK);
          assert.match((e as Error).message, /ENOSPC|no space/i);
          return true;
        });
        assert.equal((await b.client.image.imageStatus({ image: { image: imgs.busybox } })).image, undefined);
        assert.equal((await b.client.runtime.version({})).runtimeName, "berth");
      } finally {
        await b.cleanup();
      }
    } finally {
      unmountUnder(dir);
      await rm(dir, { recursive: true, force: true });
      await imgs.stop();
    }
  });
});
