// Child processes that never finish, and request fields that would become text for another
// program, against a real berthd on its socket:
// - a stand-in runc that hangs on `create`: RunPodSandbox fails at the configured limit or at
//   the client's deadline, the stand-in's whole process group is killed, and nothing is left
//   (no netns, IP lease, pod directory, mount, runtime container or listed sandbox); a retry
//   that joined the create fails with it instead of waiting forever;
// - a handler whose binary is missing: Status says so, RunPodSandbox answers
//   FAILED_PRECONDITION naming the handler and the binary at once, and so does a retry;
// - injections: newlines in DNS search domains, options and the hostname (resolv.conf,
//   hosts, hostname), ";" and "=" in pod metadata (CNI_ARGS), a non-IP host_ip (portmap's
//   iptables rules), oversized annotations, ".." in log paths, and an image whose
//   /etc/passwd is a symlink to a host file.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NamespaceMode } from "../../proto/gen/runtime/v1/api_pb.js";
import { buildImage, layerBlob } from "../../hack/registry/oci-image.ts";
import { pushImage } from "../../hack/registry/push.ts";
import { buildTar } from "../../hack/registry/tar-writer.ts";
import { codeOf, grpc } from "../lib/cri-client.ts";
import { busyboxEntries } from "../lib/images.ts";
import { mountsUnder } from "../lib/mounts.ts";
import { podConfig, startPodEnv, type PodEnv } from "../lib/pod.ts";
import { processGroupMembers } from "../lib/procs.ts";

const ls = (dir: string) => { try { return readdirSync(dir); } catch { return []; } };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


/** Waits (bounded) until the file holds a pid; 0 if it never does. */
async function pidFrom(file: string, ms = 20_000): Promise<number> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(50)) {
    const n = Number((await readFile(file, "utf8").catch(() => "")).trim());
    if (n > 0) return n;
  }
  return 0;
}

/** Waits (bounded) until nothing of the group is left; returns what is left. */
async function groupGone(pgid: number, ms = 10_000): Promise<number[]> {
  let left = await processGroupMembers(pgid);
  for (const end = Date.now() + ms; left.length && Date.now() < end; await sleep(50)) left = await processGroupMembers(pgid);
  return left;
}

/** Nothing of any pod is left under berthd's state, in CNI or in the runtime. */
async function assertNothingLeft(env: PodEnv, leasesBefore: string[]): Promise<void> {
  const c = env.b.client.runtime;
  assert.equal((await c.listPodSandbox({})).items.length, 0, "no sandbox listed");
  assert.deepEqual(ls(join(env.b.state, "netns")), [], "no netns left");
  assert.deepEqual(ls(join(env.b.state, "sandboxes")), [], "no pod directory left");
  assert.deepEqual(mountsUnder(env.b.state).filter((m) => !m.endsWith("/netns")), [], "no mount left");
  assert.deepEqual(await env.net.leases(), leasesBefore, "no IP lease left");
  for (const h of ["runc", "hang"]) {
    const list = spawnSync("runc", ["--root", join(env.b.state, h), "list", "-q"], { encoding: "utf8" }).stdout.trim();
    assert.equal(list, "", `no ${h} runtime container left`);
  }
}

/** A pod that shares its PID namespace: berth runs an infra process for it (the runtime is called). */
const SHARED_PID = { linux: { securityContext: { namespaceOptions: { pid: NamespaceMode.POD } } } };

describe("an OCI runtime that hangs", () => {
  let env: PodEnv;
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "berth-hang-"));
    // Writes its pid (= its process group: berth starts every child in a group of its own),
    // starts a grandchild in that group, and never finishes `create`.
    const hang = join(dir, "hang-runtime");
    await writeFile(hang, `#!/bin/sh\nfor a in "$@"; do case "$a" in create) echo $$ > ${dir}/pgid; sleep 600 & wait; exit 1;; esac; done\nexec runc "$@"\n`);
    await chmod(hang, 0o755);
    env = await startPodEnv({ toml: `[runtime]\nruntime_timeout = 2\n[runtime.handlers.hang]\nbinary = "${hang}"\n[runtime.handlers.gone]\nbinary = "${dir}/no-such-runtime"\n` });
  });
  after(async () => {
    await env.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  test("RunPodSandbox fails at the handler's limit naming the command and the limit; the group is killed, nothing leaks", async () => {
    const c = env.b.client.runtime;
    const leases = await env.net.leases();
    await rm(join(dir, "pgid"), { force: true });
    const start = Date.now();
    // pid POD: a pod with an infra process, so RunPodSandbox calls the runtime.
    await assert.rejects(c.runPodSandbox({ config: podConfig(SHARED_PID), runtimeHandler: "hang" }, { timeoutMs: 20_000 }), (e) => {
      assert.equal(codeOf(e), grpc.status.DEADLINE_EXCEEDED, String(e));
      assert.match((e as Error).message, /runtime handler hang: create container [0-9a-f]{64}/);
      assert.match((e as Error).message, /within its limit of 2 s/);
      return true;
    });
    const took = Date.now() - start;
    assert.ok(took >= 1900 && took < 15_000, `answered after ${took} ms`);
    const pgid = await pidFrom(join(dir, "pgid"));
    assert.ok(pgid > 0, "the stand-in ran");
    assert.deepEqual(await groupGone(pgid), [], "nothing of the stand-in's process group is left");
    await assertNothingLeft(env, leases);
  });

  test("the client's deadline kills the runtime; a retry that joined the create fails with it", async () => {
    await env.b.stop();
    // A limit far beyond the client's deadline: only the deadline can end the call.
    await writeFile(env.b.configPath, (await readFile(env.b.configPath, "utf8")).replace("runtime_timeout = 2", "runtime_timeout = 300"));
    await env.b.restart();
    const c = env.b.client.runtime;
    const leases = await env.net.leases();
    await rm(join(dir, "pgid"), { force: true });
    const config = podConfig(SHARED_PID);
    const start = Date.now();
    const first = c.runPodSandbox({ config, runtimeHandler: "hang" }, { timeoutMs: 4000 });
    const pgid = await pidFrom(join(dir, "pgid"));
    assert.ok(pgid > 0, "the stand-in ran");
    // kubelet's retry of the same request joins the create in progress; with a long deadline of its own.
    const retry = c.runPodSandbox({ config, runtimeHandler: "hang" }, { timeoutMs: 60_000 });
    await assert.rejects(first, (e) => { assert.equal(codeOf(e), grpc.status.DEADLINE_EXCEEDED, String(e)); return true; });
    await assert.rejects(retry, (e) => {
      assert.equal(codeOf(e), grpc.status.DEADLINE_EXCEEDED, String(e));
      assert.match((e as Error).message, /deadline passed/);
      return true;
    });
    const took = Date.now() - start;
    assert.ok(took < 15_000, `the joined retry answered after ${took} ms`);
    assert.deepEqual(await groupGone(pgid), [], "nothing of the stand-in's process group is left");
    await assertNothingLeft(env, leases);
  });

  test("a handler whose binary is missing: Status reports it, RunPodSandbox and its retry fail at once naming it", async () => {
    const c = env.b.client.runtime;
    const st = await c.status({ verbose: true });
    const runtimeReady = st.status!.conditions.find((x) => x.type === "RuntimeReady");
    assert.equal(runtimeReady?.status, true, "the default handler is fine: the runtime is ready");
    const handlers = JSON.parse(st.info["runtimeHandlers"]!) as Record<string, { binary: string; ready: boolean; message?: string; default: boolean }>;
    assert.equal(handlers["gone"]?.ready, false);
    assert.match(handlers["gone"]!.message!, new RegExp(`binary ${dir}/no-such-runtime does not exist`));
    assert.equal(handlers["runc"]?.ready, true);
    assert.equal(handlers["runc"]?.default, true);
    assert.equal(handlers["hang"]?.ready, true);
    const leases = await env.net.leases();
    const config = podConfig();
    for (const attempt of ["first", "retry"]) {
      const start = Date.now();
      await assert.rejects(c.runPodSandbox({ config, runtimeHandler: "gone" }, { timeoutMs: 10_000 }), (e) => {
        assert.equal(codeOf(e), grpc.status.FAILED_PRECONDITION, `${attempt}: ${String(e)}`);
        assert.match((e as Error).message, /runtime handler "gone"/);
        assert.match((e as Error).message, new RegExp(`${dir}/no-such-runtime`));
        return true;
      });
      assert.ok(Date.now() - start < 2000, `${attempt} answered after ${Date.now() - start} ms`);
    }
    await assertNothingLeft(env, leases);
    // The runtime still works for the other handlers.
    const { podSandboxId } = await c.runPodSandbox({ config: podConfig() });
    await c.removePodSandbox({ podSandboxId });
  });

  test("when the DEFAULT handler's binary is missing, RuntimeReady is false naming it, and pods without a handler are refused", async () => {
    await env.b.stop();
    await writeFile(env.b.configPath, (await readFile(env.b.configPath, "utf8")).replace("[runtime]\n", '[runtime]\ndefault_handler = "gone"\n'));
    await env.b.restart();
    const c = env.b.client.runtime;
    try {
      const st = await c.status({});
      const runtimeReady = st.status!.conditions.find((x) => x.type === "RuntimeReady");
      assert.equal(runtimeReady?.status, false);
      assert.equal(runtimeReady?.reason, "RuntimeBinaryMissing");
      assert.match(runtimeReady!.message, /no-such-runtime/);
      await assert.rejects(c.runPodSandbox({ config: podConfig() }, { timeoutMs: 10_000 }), (e) => {
        assert.equal(codeOf(e), grpc.status.FAILED_PRECONDITION, String(e));
        assert.match((e as Error).message, /runtime handler "gone": its binary .*no-such-runtime does not exist/);
        return true;
      });
      assert.equal((await c.listPodSandbox({})).items.length, 0);
    } finally {
      await env.b.stop();
      await writeFile(env.b.configPath, (await readFile(env.b.configPath, "utf8")).replace('default_handler = "gone"\n', ""));
      await env.b.restart();
    }
  });
});

describe("request fields that would inject text into another program's input", () => {
  let env: PodEnv;
  let dir: string;
  let hostFile: string;
  let busybox: string;
  let symlinked: string;
  before(async () => {
    env = await startPodEnv({ images: true });
    dir = await mkdtemp(join(tmpdir(), "berth-inject-"));
    // A host file that looks like a passwd file: an image must never get berth to read it.
    hostFile = join(dir, "host-passwd");
    await writeFile(hostFile, "h4evil:x:4242:4242:from the host:/:/bin/sh\n");
    busybox = env.images!.busybox;
    const entries = busyboxEntries().map((e) => e.name === "etc/passwd" ? { name: "etc/passwd", type: "symlink" as const, linkname: hostFile } : e);
    const layer = layerBlob(buildTar(entries), "gzip");
    await pushImage({ address: env.images!.registry.address }, "berth-test/passwd-symlink", "latest", buildImage([layer], { Env: ["PATH=/bin"], Cmd: ["sh"] }));
    symlinked = `${env.images!.registry.address}/berth-test/passwd-symlink:latest`;
    await env.b.client.image.pullImage({ image: { image: busybox } });
    await env.b.client.image.pullImage({ image: { image: symlinked } });
  });
  after(async () => {
    await env.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  /** INVALID_ARGUMENT matching every pattern, and no sandbox, netns or pod directory. */
  const refusedPod = async (config: Record<string, unknown>, ...patterns: RegExp[]) => {
    const c = env.b.client.runtime;
    await assert.rejects(c.runPodSandbox({ config }), (e) => {
      assert.equal(codeOf(e), grpc.status.INVALID_ARGUMENT, String(e));
      for (const re of patterns) assert.match((e as Error).message, re);
      return true;
    });
    assert.equal((await c.listPodSandbox({})).items.length, 0, "no sandbox");
    assert.deepEqual(ls(join(env.b.state, "netns")), [], "no netns");
    assert.deepEqual(ls(join(env.b.state, "sandboxes")), [], "no pod directory");
  };

  test("a newline in a DNS search domain or option is refused naming the field; resolv.conf gets no extra line", async () => {
    await refusedPod(podConfig({ dnsConfig: { servers: ["10.0.0.10"], searches: ["svc.cluster.local\nnameserver 6.6.6.6"], options: [] } }),
      /config\.dns_config\.searches\[0\]/, /nameserver 6\.6\.6\.6/);
    await refusedPod(podConfig({ dnsConfig: { servers: ["10.0.0.10"], searches: ["a.local", "b.local c.local"], options: [] } }),
      /config\.dns_config\.searches\[1\]/);
    await refusedPod(podConfig({ dnsConfig: { servers: ["10.0.0.10"], searches: [], options: ["ndots:5\nnameserver 6.6.6.6"] } }),
      /config\.dns_config\.options\[0\]/);
    await refusedPod(podConfig({ dnsConfig: { servers: ["10.0.0.10\nnameserver 6.6.6.6"], searches: [], options: [] } }),
      /config\.dns_config\.servers/);
    await refusedPod(podConfig({ dnsConfig: { servers: ["10.0.0.10"], searches: Array.from({ length: 40 }, (_, i) => `d${i}.local`), options: [] } }),
      /config\.dns_config\.searches: 40 domains, more than the limit of 32/);
    // The same fields, well formed, give exactly the lines asked for.
    const c = env.b.client.runtime;
    const { podSandboxId } = await c.runPodSandbox({ config: podConfig({ dnsConfig: { servers: ["10.0.0.10"], searches: ["svc.cluster.local"], options: ["ndots:5"] } }) });
    try {
      const resolv = await readFile(join(env.b.state, "sandboxes", podSandboxId, "resolv.conf"), "utf8");
      assert.equal(resolv, "search svc.cluster.local\nnameserver 10.0.0.10\noptions ndots:5\n");
    } finally {
      await c.removePodSandbox({ podSandboxId });
    }
  });

  test("a newline in the hostname, or in the pod name it defaults to, is refused naming the field", async () => {
    await refusedPod(podConfig({ hostname: "pod\n6.6.6.6 kubernetes.default" }), /config\.hostname/);
    const cfg = podConfig({ hostname: "" });
    await refusedPod({ ...cfg, metadata: { ...(cfg.metadata as object), name: "pod\n6.6.6.6 evil" } }, /config\.metadata\.name/, /control characters/);
  });

  test("\";\" or \"=\" in pod metadata would add keys to CNI_ARGS: refused naming the field", async () => {
    const cfg = podConfig();
    const m = cfg.metadata as { name: string; namespace: string; uid: string; attempt: number };
    await refusedPod({ ...cfg, metadata: { ...m, namespace: "default;K8S_POD_NAME=kube-apiserver" } }, /config\.metadata\.namespace/, /CNI_ARGS/);
    await refusedPod({ ...cfg, metadata: { ...m, name: "web;IgnoreUnknown=0" } }, /config\.metadata\.name/);
    await refusedPod({ ...cfg, metadata: { ...m, uid: "u=1" } }, /config\.metadata\.uid/);
  });

  test("a port mapping's host_ip must be an IP address (it becomes a portmap iptables rule)", async () => {
    await refusedPod(podConfig({ portMappings: [{ protocol: 0, containerPort: 80, hostPort: 18080, hostIp: "0.0.0.0 -j ACCEPT" }] }),
      /config\.port_mappings\[0\]\.host_ip/);
  });

  test("annotations beyond 256 KiB are refused naming the limit", async () => {
    await refusedPod(podConfig({ annotations: { big: "x".repeat(300 * 1024) } }), /config\.annotations are larger than the limit of 262144 bytes/);
  });

  test("\"..\" in log_directory or log_path is refused naming the field; nothing is written outside", async () => {
    const c = env.b.client.runtime;
    const logDir = join(dir, "pods", "ns_pod_uid");
    const config = podConfig({ logDirectory: logDir });
    const { podSandboxId } = await c.runPodSandbox({ config });
    try {
      for (const [logPath, re] of [
        ["../../escaped.log", /config\.log_path "\.\.\/\.\.\/escaped\.log" must not contain "\.\." components/],
        ["c/../../x.log", /config\.log_path/],
        ["/etc/cron.d/evil", /config\.log_path "\/etc\/cron\.d\/evil" must be relative/],
      ] as const) {
        await assert.rejects(c.createContainer({
          podSandboxId, sandboxConfig: config,
          config: { metadata: { name: `c${Math.random().toString(16).slice(2, 8)}`, attempt: 0 }, image: { image: busybox }, command: ["true"], logPath },
        }), (e) => {
          assert.equal(codeOf(e), grpc.status.INVALID_ARGUMENT, String(e));
          assert.match((e as Error).message, re);
          return true;
        });
      }
      assert.equal((await c.listContainers({})).containers.length, 0, "no container");
      assert.deepEqual(ls(dir).sort(), ["host-passwd"], "nothing written outside the log directory");
      // A sandbox whose log_directory climbs is refused when a container would log there.
      const bad = podConfig({ logDirectory: `${logDir}/../../..` });
      const { podSandboxId: badPod } = await c.runPodSandbox({ config: bad });
      try {
        await assert.rejects(c.createContainer({
          podSandboxId: badPod, sandboxConfig: bad,
          config: { metadata: { name: "c", attempt: 0 }, image: { image: busybox }, command: ["true"], logPath: "c/0.log" },
        }), (e) => {
          assert.equal(codeOf(e), grpc.status.INVALID_ARGUMENT, String(e));
          assert.match((e as Error).message, /sandbox_config\.log_directory .* must not contain "\.\." components/);
          return true;
        });
      } finally {
        await c.removePodSandbox({ podSandboxId: badPod });
      }
      // A well-formed path logs where asked.
      const { containerId } = await c.createContainer({
        podSandboxId, sandboxConfig: config,
        config: { metadata: { name: "ok", attempt: 0 }, image: { image: busybox }, command: ["echo", "hello"], logPath: "ok/0.log" },
      });
      assert.equal((await c.containerStatus({ containerId })).status!.logPath, join(logDir, "ok/0.log"));
    } finally {
      await c.removePodSandbox({ podSandboxId });
    }
  });

  test("an image whose /etc/passwd is a symlink to a host file: berth reads the link inside the rootfs, never the host file", async () => {
    const c = env.b.client.runtime;
    const config = podConfig();
    const { podSandboxId } = await c.runPodSandbox({ config });
    try {
      // "h4evil" exists only in the host file the link names.
      await assert.rejects(c.createContainer({
        podSandboxId, sandboxConfig: config,
        config: { metadata: { name: "evil", attempt: 0 }, image: { image: symlinked }, command: ["id"], linux: { securityContext: { runAsUsername: "h4evil" } } },
      }), (e) => {
        assert.equal(codeOf(e), grpc.status.INVALID_ARGUMENT, String(e));
        assert.match((e as Error).message, /user "h4evil" not found in the container's \/etc\/passwd/);
        return true;
      });
      assert.equal((await c.listContainers({})).containers.length, 0);
      // A numeric user still works: the missing passwd file is not an error.
      const { containerId } = await c.createContainer({
        podSandboxId, sandboxConfig: config,
        config: { metadata: { name: "numeric", attempt: 0 }, image: { image: symlinked }, command: ["id"], linux: { securityContext: { runAsUser: { value: 4242n } } } },
      });
      assert.ok(containerId);
    } finally {
      await c.removePodSandbox({ podSandboxId });
    }
  });
});
