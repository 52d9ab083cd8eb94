// User namespaces (KEP-127) over the real socket with real runc 1.1: a pod with its own user
// namespace (mode POD, kubelet's one uid and one gid mapping) whose rootfs and volumes berth
// idmaps itself; mode NODE; the refusals; and that removing the pod leaves no mount behind.
// Every ownership assertion compares what the container sees with what the host sees.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ContainerState, NamespaceMode } from "../../proto/gen/runtime/v1/api_pb.js";
import { execFileSync } from "node:child_process";
import { dialSpdy, openPortForwardPair, openRemoteCommandStreams, readAll, runRemoteCommand } from "../lib/spdy-client.ts";
import { codeOf, grpc } from "../lib/cri-client.ts";
import { mountsUnder } from "../lib/mounts.ts";
import { podConfig, startPodEnv, type PodEnv } from "../lib/pod.ts";

const UIDS = { containerId: 0, hostId: 200000, length: 65536 };
const GIDS = { containerId: 0, hostId: 300000, length: 65536 };
const userns = (over: Record<string, unknown> = {}) => ({ mode: NamespaceMode.POD, uids: [UIDS], gids: [GIDS], ...over });

describe("user namespaces", () => {
  let env: PodEnv;
  let busybox: string;
  let dir: string;
  const c = () => env.b.client.runtime;

  const runPod = async (usernsOptions: Record<string, unknown>, over: Record<string, unknown> = {}) => {
    const config = podConfig({ linux: { securityContext: { namespaceOptions: { usernsOptions } } }, ...over });
    const { podSandboxId } = await c().runPodSandbox({ config });
    return { id: podSandboxId, config };
  };

  const startContainer = async (pod: { id: string; config: ReturnType<typeof podConfig> }, opts: { command?: string[]; mounts?: unknown[]; logPath?: string } = {}) => {
    const { containerId } = await c().createContainer({
      podSandboxId: pod.id,
      sandboxConfig: pod.config,
      config: {
        metadata: { name: `c-${Math.random().toString(16).slice(2, 10)}`, attempt: 0 },
        image: { image: busybox },
        command: opts.command ?? ["sleep", "3600"],
        mounts: opts.mounts as never,
        logPath: opts.logPath ?? "",
        // As kubelet does: the container repeats its pod's namespace options.
        linux: { securityContext: { namespaceOptions: (pod.config.linux as { securityContext?: { namespaceOptions?: never } }).securityContext?.namespaceOptions } },
      },
    });
    await c().startContainer({ containerId });
    return containerId;
  };

  const sh = async (id: string, script: string) => {
    const r = await c().execSync({ containerId: id, cmd: ["sh", "-c", script], timeout: 30n });
    return { out: Buffer.from(r.stdout).toString(), err: Buffer.from(r.stderr).toString(), code: r.exitCode };
  };
  const ok = async (id: string, script: string) => {
    const r = await sh(id, script);
    assert.equal(r.code, 0, `${script}: ${r.err}`);
    return r.out.trim();
  };

  before(async () => {
    // The container's root (host uid 200000) must be able to search the way to berth's state.
    dir = await mkdtemp(join(tmpdir(), "berth-userns-"));
    await chmod(dir, 0o711);
    env = await startPodEnv({ images: true, dir });
    busybox = env.images!.busybox;
    await env.b.client.image.pullImage({ image: { image: busybox } });
  });

  after(async () => {
    await env?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test("Status advertises user namespaces for runc from the start-up probe, and never for host network", async () => {
    const st = await c().status({ verbose: false });
    const runc = st.runtimeHandlers.find((h) => h.name === "runc");
    assert.ok(runc, "runc handler listed");
    assert.equal(runc.features?.userNamespaces, true);
    // The default handler is also listed as "", the name kubelet and critest look it up by.
    assert.equal(st.runtimeHandlers.find((h) => h.name === "")?.features?.userNamespaces, true);
    assert.equal(st.features?.userNamespacesHostNetwork, false);
  });

  test("a POD user namespace: mapping, ownership of rootfs and volumes on both sides, pod files, sysctls, network, logs; removal leaves no mount", async () => {
    const vol = join(dir, "vol");
    await mkdir(vol);
    await writeFile(join(vol, "host-file"), "from the host\n");
    await chown(join(vol, "host-file"), 1234, 1234);
    const logDir = join(dir, "logs");
    await mkdir(logDir);
    const pod = await runPod(userns(), { logDirectory: logDir, linux: { securityContext: { namespaceOptions: { usernsOptions: userns() } }, sysctls: { "net.ipv4.ip_unprivileged_port_start": "81" } } });
    const id = await startContainer(pod, { mounts: [{ containerPath: "/vol", hostPath: vol }] });

    // The mapping kubelet sent, as the process sees it.
    assert.match(await ok(id, "cat /proc/self/uid_map"), /^\s*0\s+200000\s+65536$/);
    assert.match(await ok(id, "cat /proc/self/gid_map"), /^\s*0\s+300000\s+65536$/);
    assert.equal(await ok(id, "id -u; id -g"), "0\n0");

    // Rootfs: image files (host uid 0) appear as root inside; a file the container writes is the
    // container's root on the host (its upper directory is owned by the mapped root).
    assert.equal(await ok(id, "stat -c %u:%g / /bin/busybox | sort -u"), "0:0");
    await ok(id, "echo hi > /made-inside && chown 7:8 /made-inside && echo x > /root-owned");
    const upper = join(env.b.root, "snapshots", "containers", id, "upper");
    const made = await stat(join(upper, "made-inside"));
    assert.deepEqual([made.uid, made.gid], [200007, 300008]);
    const rootOwned = await stat(join(upper, "root-owned"));
    assert.deepEqual([rootOwned.uid, rootOwned.gid], [200000, 300000]);

    // Volume (idmapped): host ownership appears unchanged inside, and the container's root writes as host root.
    assert.equal(await ok(id, "stat -c %u:%g /vol/host-file; cat /vol/host-file"), "1234:1234\nfrom the host");
    assert.equal(await ok(id, "stat -c %u:%g /vol"), "0:0");
    await ok(id, "echo from-container > /vol/from-container && touch /vol/chowned-inside && chown 42:43 /vol/chowned-inside");
    const fc = await stat(join(vol, "from-container"));
    assert.deepEqual([fc.uid, fc.gid], [0, 0]);
    const ch = await stat(join(vol, "chowned-inside"));
    assert.deepEqual([ch.uid, ch.gid], [42, 43]);
    assert.equal(await readFile(join(vol, "from-container"), "utf8"), "from-container\n");

    // Pod files and /dev/shm: owned by root inside, /dev/shm writable.
    assert.equal(await ok(id, "stat -c %u:%g /etc/hosts /etc/resolv.conf /etc/hostname | sort -u"), "0:0");
    assert.equal(await ok(id, "hostname"), pod.config.hostname);
    await ok(id, "echo shm > /dev/shm/x && cat /dev/shm/x");

    // The pod's network namespace belongs to its user namespace: its sysctl applied, an address from CNI.
    assert.equal(await ok(id, "cat /proc/sys/net/ipv4/ip_unprivileged_port_start"), "81");
    const ps = await c().podSandboxStatus({ podSandboxId: pod.id });
    const ip = ps.status?.network?.ip ?? "";
    assert.match(ip, /^\d+\.\d+\.\d+\.\d+$/);
    assert.match(await ok(id, "ip -4 addr show eth0"), new RegExp(`inet ${ip.replace(/\./g, "\\.")}/`));

    // The CRI log of a container in the pod, written by conmon on the host.
    const logged = await startContainer(pod, { command: ["cat", "/proc/self/uid_map"], logPath: "uidmap.log" });
    for (let i = 0; i < 100 && (await c().containerStatus({ containerId: logged })).status?.state !== ContainerState.CONTAINER_EXITED; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal((await c().containerStatus({ containerId: logged })).status?.state, ContainerState.CONTAINER_EXITED);
    assert.match(await readFile(join(logDir, "uidmap.log"), "utf8"), /stdout F\s+0\s+200000\s+65536/);

    // While they run, berth holds only the pod's pins (user and net) and each container's rootfs under <state>/userns.
    const held = mountsUnder(join(env.b.state, "userns"));
    assert.deepEqual(held.map((m) => m.split("/").slice(-2).join("/")).sort(), [`${id}/rootfs`, `${logged}/rootfs`, `${pod.id}/net`, `${pod.id}/user`].sort(), held.join(", "));

    await c().removeContainer({ containerId: id });
    await c().removeContainer({ containerId: logged });
    await c().stopPodSandbox({ podSandboxId: pod.id });
    await c().removePodSandbox({ podSandboxId: pod.id });
    assert.deepEqual(mountsUnder(join(env.b.state, "userns")), []);
    assert.deepEqual(mountsUnder(env.b.state).filter((m) => m.includes(pod.id) || m.includes(id)), []);
  });

  test("exec with a TTY, attach and port-forward to a privileged port work in a user-namespaced pod", async () => {
    const V4 = ["v4.channel.k8s.io"];
    const pod = await runPod(userns());
    // Port 80: the pod's root may bind it, its netns belonging to the pod's user namespace.
    const web = await startContainer(pod, { command: ["sh", "-c", "mkdir -p /www && echo hello-userns > /www/index.html && exec httpd -f -p 80 -h /www"] });
    const { containerId: shell } = await c().createContainer({
      podSandboxId: pod.id, sandboxConfig: pod.config,
      config: { metadata: { name: "shell", attempt: 0 }, image: { image: busybox }, command: ["sh"], stdin: true, linux: { securityContext: { namespaceOptions: { usernsOptions: userns() } } } },
    });
    await c().startContainer({ containerId: shell });

    const { url } = await c().exec({ containerId: web, cmd: ["sh", "-c", "tty >/dev/null && cat /proc/self/uid_map"], tty: true, stdout: true });
    const r = await runRemoteCommand(url, { protocols: V4, stdout: true, stderr: false, tty: true });
    assert.match(r.stdout.toString(), /0\s+200000\s+65536/);
    assert.equal(JSON.parse(r.error).status, "Success");

    const att = await c().attach({ containerId: shell, stdin: true, stdout: true, stderr: true });
    const a = await dialSpdy(att.url, { protocols: V4 });
    try {
      const st = await openRemoteCommandStreams(a.conn, { stdin: true, stdout: true, stderr: true });
      st.stdin!.write("echo attached-$(id -u)-$((6*7))\n");
      const got = await new Promise<string>((resolve, reject) => {
        let buf = "";
        const t = setTimeout(() => reject(new Error(`no output, got ${JSON.stringify(buf)}`)), 10_000);
        st.stdout!.on("data", (d: Buffer) => { buf += d.toString(); if (buf.includes("attached-0-42")) { clearTimeout(t); resolve(buf); } });
      });
      assert.match(got, /attached-0-42/);
    } finally {
      a.conn.destroy();
    }

    for (let i = 0; i < 50 && (await sh(web, "nc -z 127.0.0.1 80")).code !== 0; i++) await new Promise((res) => setTimeout(res, 100));
    const pf = await c().portForward({ podSandboxId: pod.id, port: [80] });
    const { conn } = await dialSpdy(pf.url, { protocols: ["portforward.k8s.io"] });
    try {
      const p = await openPortForwardPair(conn, 80, "1");
      p.data.end("GET /index.html HTTP/1.0\r\n\r\n");
      const body = (await readAll(p.data)).toString();
      assert.match(body, /200 OK/);
      assert.match(body, /hello-userns/);
    } finally {
      conn.destroy();
    }
    await c().removePodSandbox({ podSandboxId: pod.id });
    assert.deepEqual(mountsUnder(join(env.b.state, "userns")), []);
  });

  test("after a crash, the start-up sweep unmounts prepared mounts and pins no pod or container knows", async () => {
    const helper = "/usr/local/libexec/berth/berth-mount";
    const root = join(env.b.state, "userns");
    const ghostPod = join(root, "pods", "f".repeat(64));
    const ghostCtr = join(root, "containers", "e".repeat(64));
    await mkdir(ghostPod, { recursive: true });
    await mkdir(join(ghostCtr, "m0"), { recursive: true });
    await writeFile(join(ghostPod, "user"), "");
    await writeFile(join(ghostPod, "net"), "");
    // What a berthd killed mid-create leaves: pinned namespaces and an idmapped clone.
    execFileSync(helper, ["userns", join(ghostPod, "user"), join(ghostPod, "net"), "0", "500000", "65536", "0", "500000", "65536"]);
    await mkdir(join(dir, "ghost-src"));
    execFileSync(helper, ["bind", join(dir, "ghost-src"), join(ghostCtr, "m0"), join(ghostPod, "user"), "rw"]);
    assert.equal(mountsUnder(root).length, 3);
    await env.b.kill9();
    await env.b.restart();
    assert.deepEqual(mountsUnder(root), []);
    assert.deepEqual((await readdir(join(root, "pods"))).filter((n) => n.startsWith("f")), []);
    assert.deepEqual((await readdir(join(root, "containers"))).filter((n) => n.startsWith("e")), []);
    assert.match(env.b.stderr.join(""), /removed mounts a crash left behind/);
  });

  test("a volume berth cannot idmap (a proc mount inside): FAILED_PRECONDITION naming it, and the create rolls back every mount", async () => {
    const pod = await runPod(userns());
    const bad = join(dir, "with-proc");
    await mkdir(join(bad, "proc"), { recursive: true });
    execFileSync("mount", ["-t", "proc", "proc", join(bad, "proc")]);
    try {
      const ok = join(dir, "ok-vol");
      await mkdir(ok, { recursive: true });
      const before = mountsUnder(join(env.b.state, "userns"));
      // The first volume is cloned before the second fails: the rollback must unmount it.
      await assert.rejects(startContainer(pod, { mounts: [{ containerPath: "/ok", hostPath: ok }, { containerPath: "/bad", hostPath: bad }] }), (e) => {
        assert.equal(codeOf(e), grpc.status.FAILED_PRECONDITION, (e as Error).message);
        assert.ok((e as Error).message.includes(bad), (e as Error).message);
        assert.match((e as Error).message, /does not support idmapped mounts/);
        return true;
      });
      assert.deepEqual(mountsUnder(join(env.b.state, "userns")), before);
      assert.deepEqual(await readdir(join(env.b.state, "userns", "containers")), []);
      assert.equal((await c().listContainers({ filter: { podSandboxId: pod.id } })).containers.length, 0);
    } finally {
      execFileSync("umount", [join(bad, "proc")]);
    }
    await c().removePodSandbox({ podSandboxId: pod.id });
  });

  test("mode NODE runs in the host's user namespace", async () => {
    const pod = await runPod({ mode: NamespaceMode.NODE });
    const id = await startContainer(pod);
    const host = (await readFile("/proc/self/uid_map", "utf8")).trim().split(/\s+/).join(" ");
    assert.equal((await ok(id, "cat /proc/self/uid_map")).split(/\s+/).join(" "), host);
    await c().removePodSandbox({ podSandboxId: pod.id });
  });

  test("a container's userns_options must match its pod's: INVALID_ARGUMENT, and no container", async () => {
    const own = await runPod(userns());
    const host = await runPod({ mode: NamespaceMode.NODE });
    const tryCreate = (pod: { id: string; config: ReturnType<typeof podConfig> }, usernsOptions: Record<string, unknown>) => c().createContainer({
      podSandboxId: pod.id, sandboxConfig: pod.config,
      config: { metadata: { name: "mismatch", attempt: 0 }, image: { image: busybox }, command: ["true"], linux: { securityContext: { namespaceOptions: { usernsOptions } } } },
    });
    for (const [pod, opts, re] of [
      [host, userns(), /does not match pod .* which runs in the host's user namespace/],
      [own, { mode: NamespaceMode.NODE }, /mode NODE .* does not match pod .* its own user namespace \(uids 0:200000:65536, gids 0:300000:65536\)/],
      [own, userns({ uids: [{ containerId: 0, hostId: 100000, length: 65536 }] }), /mode POD .* does not match/],
      [own, { mode: NamespaceMode.CONTAINER }, /mode CONTAINER/],
    ] as const) {
      await assert.rejects(tryCreate(pod, opts), (e) => {
        assert.equal(codeOf(e), grpc.status.INVALID_ARGUMENT, (e as Error).message);
        assert.match((e as Error).message, /userns_options/);
        assert.match((e as Error).message, re);
        return true;
      });
      assert.equal((await c().listContainers({ filter: { podSandboxId: pod.id } })).containers.length, 0);
    }
    await c().removePodSandbox({ podSandboxId: own.id });
    await c().removePodSandbox({ podSandboxId: host.id });
  });

  describe("refusals: INVALID_ARGUMENT naming the field, and no pod", () => {
    const refused = async (usernsOptions: Record<string, unknown>, re: RegExp, over: Record<string, unknown> = {}) => {
      const before = (await c().listPodSandbox({})).items.length;
      const mountsBefore = mountsUnder(join(env.b.state, "userns"));
      await assert.rejects(runPod(usernsOptions, over), (e) => {
        assert.equal(codeOf(e), grpc.status.INVALID_ARGUMENT, (e as Error).message);
        assert.match((e as Error).message, /userns_options/);
        assert.match((e as Error).message, re);
        return true;
      });
      assert.equal((await c().listPodSandbox({})).items.length, before);
      assert.deepEqual(mountsUnder(join(env.b.state, "userns")), mountsBefore);
    };
    test("two uid mappings", () => refused(userns({ uids: [UIDS, { containerId: 0, hostId: 400000, length: 65536 }] }), /uids: exactly one mapping is supported, got 2/));
    test("two gid mappings", () => refused(userns({ gids: [GIDS, GIDS] }), /gids: exactly one mapping/));
    test("no mapping", () => refused(userns({ uids: [], gids: [] }), /uids: exactly one mapping is supported, got 0/));
    test("container id 0 not mapped", () => refused(userns({ uids: [{ containerId: 1, hostId: 200000, length: 65536 }] }), /uids\[0\]: container id 0 must be mapped/));
    test("a zero length", () => refused(userns({ gids: [{ containerId: 0, hostId: 300000, length: 0 }] }), /gids\[0\]\.length must not be 0/));
    test("a range past 2^32", () => refused(userns({ uids: [{ containerId: 0, hostId: 4294967000, length: 65536 }] }), /passes 2\^32/));
    test("mode CONTAINER", () => refused({ mode: NamespaceMode.CONTAINER }, /mode CONTAINER is not supported/));
    test("mode TARGET", () => refused({ mode: NamespaceMode.TARGET }, /mode TARGET is not supported/));
    test("mode NODE with mappings", () => refused({ mode: NamespaceMode.NODE, uids: [UIDS], gids: [GIDS] }, /mode NODE takes no uids\/gids/));
    test("with the host network", () => refused(userns(), /host's network namespace/, {
      linux: { securityContext: { namespaceOptions: { network: NamespaceMode.NODE, usernsOptions: userns() } } },
    }));
  });
});
