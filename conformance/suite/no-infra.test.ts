// Pods without an infra process (issue #18, runtime.drop_infra) over the real socket with real runc:
// a pod whose PID namespace mode is not POD (kubelet's ordinary pod) gets its IPC and UTS namespaces
// from berth-mount pin-ns, pinned in its pod directory, and no catatonit or runc call; a pod with
// pid POD keeps its infra process. Both kinds: containers share IPC and UTS, see the pod's sysctls
// and hostname, survive kill -9 of berthd, and leave no mount behind; user namespaced pods too.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NamespaceMode, PodSandboxState } from "../../proto/gen/runtime/v1/api_pb.js";
import { codeOf, grpc } from "../lib/cri-client.ts";
import { mountsUnder } from "../lib/mounts.ts";
import { podConfig, startPodEnv, type PodEnv } from "../lib/pod.ts";

type Pod = { id: string; config: ReturnType<typeof podConfig> };
type Info = { pid: number; pins?: { ipc: string; uts: string }; netnsPath: string; podDir: string };

const UIDS = { containerId: 0, hostId: 200000, length: 65536 };
const GIDS = { containerId: 0, hostId: 300000, length: 65536 };

/** Pids of every host process whose `ns` namespace is the one with inode `ino`. */
function processesIn(ns: string, ino: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    let link = "";
    try { link = readlinkSync(`/proc/${d}/ns/${ns}`); } catch { continue; } // exited meanwhile
    if (link === `${ns}:[${ino}]`) out.push(Number(d));
  }
  return out;
}

/** Runtime (runc) containers berthd's runc root knows. */
const runcIds = (state: string): string[] => {
  const out = execFileSync("runc", ["--root", join(state, "runc"), "list", "-q"], { encoding: "utf8" });
  return out.split("\n").filter(Boolean);
};

function suite(name: string, userns: boolean) {
  describe(name, () => {
    let env: PodEnv;
    let busybox: string;
    const c = () => env.b.client.runtime;

    const runPod = async (pid: NamespaceMode, over: { linux?: Record<string, unknown>; ns?: Record<string, unknown>; hostname?: string } = {}): Promise<Pod> => {
      const namespaceOptions = {
        pid, ...over.ns,
        ...(userns ? { usernsOptions: { mode: NamespaceMode.POD, uids: [UIDS], gids: [GIDS] } } : {}),
      };
      const config = podConfig({
        ...(over.hostname ? { hostname: over.hostname } : {}),
        linux: { ...over.linux, securityContext: { namespaceOptions } },
      });
      const { podSandboxId } = await c().runPodSandbox({ config });
      return { id: podSandboxId, config };
    };
    const info = async (id: string): Promise<Info> => JSON.parse((await c().podSandboxStatus({ podSandboxId: id, verbose: true })).info["info"]!);
    const start = async (p: Pod, command = ["sleep", "3600"]): Promise<string> => {
      const { containerId } = await c().createContainer({
        podSandboxId: p.id, sandboxConfig: p.config,
        config: {
          metadata: { name: `c-${Math.random().toString(16).slice(2, 10)}`, attempt: 0 },
          image: { image: busybox },
          command,
          // As kubelet does: the container repeats its pod's namespace options.
          linux: { securityContext: { namespaceOptions: (p.config.linux as { securityContext: { namespaceOptions: never } }).securityContext.namespaceOptions } },
        },
      });
      await c().startContainer({ containerId });
      return containerId;
    };
    const exec = async (id: string, cmd: string[]) => {
      const r = await c().execSync({ containerId: id, cmd, timeout: 30n });
      return { out: Buffer.from(r.stdout).toString(), err: Buffer.from(r.stderr).toString(), code: r.exitCode };
    };
    const sh = async (id: string, script: string) => (await exec(id, ["sh", "-c", script])).out;
    const stateMounts = () => mountsUnder(env.b.state, readFileSync("/proc/self/mountinfo", "utf8"), true);
    /** Mounts left of one pod: anything naming its id under berth's state. */
    const podMounts = (id: string) => stateMounts().filter((m) => m.includes(id) || m.includes(id.slice(0, 32)));

    let dir = "";
    before(async () => {
      if (userns) {
        // The container's root (host uid 200000) must be able to search the way to berth's state.
        dir = await mkdtemp(join(tmpdir(), "berth-noinfra-"));
        await chmod(dir, 0o711);
      }
      env = await startPodEnv({ images: true, ...(dir ? { dir } : {}) });
      busybox = env.images!.busybox;
      await env.b.client.image.pullImage({ image: { image: busybox } });
    });
    after(async () => {
      await env?.cleanup();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    test("pid CONTAINER: no infra process and no runc call; containers share the pinned IPC and UTS namespaces, hostname and sysctls; each has its own pid 1", async () => {
      const p = await runPod(NamespaceMode.CONTAINER, {
        hostname: "pinned-host",
        // net.ipv4.conf.eth0.*: the interface CNI makes must exist when it is set.
        linux: { sysctls: { "kernel.shmmni": "4001", "fs.mqueue.msg_max": "20", "net.ipv4.ip_unprivileged_port_start": "81", "net.ipv4.conf.eth0.accept_local": "1" } },
      });
      const i = await info(p.id);
      assert.equal(i.pid, 0, "no infra pid");
      assert.ok(i.pins && i.pins.ipc && i.pins.uts, "ipc and uts are pinned");
      for (const pin of [i.pins!.ipc, i.pins!.uts]) {
        assert.ok(pin.startsWith(`${i.podDir}/`), `${pin} is in the pod directory`);
        assert.equal(spawnSync("stat", ["-f", "-c", "%T", pin], { encoding: "utf8" }).stdout.trim(), "nsfs", `${pin} is a mounted namespace`);
      }
      assert.equal((await c().podSandboxStatus({ podSandboxId: p.id })).status?.state, PodSandboxState.SANDBOX_READY);
      assert.ok(!runcIds(env.b.state).includes(p.id), "runc never created the pod");
      const ipcIno = statSync(i.pins!.ipc).ino;
      const utsIno = statSync(i.pins!.uts).ino;
      assert.deepEqual(processesIn("ipc", ipcIno), [], "no process holds the pod's IPC namespace (no catatonit)");
      assert.deepEqual(processesIn("uts", utsIno), [], "no process holds the pod's UTS namespace");
      assert.notEqual(readlinkSync("/proc/self/ns/ipc"), `ipc:[${ipcIno}]`);
      // Stats with no process at all in the pod: network counters from the pinned netns itself.
      const early = (await c().podSandboxStats({ podSandboxId: p.id })).stats!;
      assert.ok(early.linux?.network?.interfaces.some((x) => x.name === "eth0"), "eth0 counters with no process in the pod's netns");

      const a = await start(p);
      const b = await start(p);
      for (const id of [a, b]) {
        assert.equal((await exec(id, ["readlink", "/proc/self/ns/ipc"])).out.trim(), `ipc:[${ipcIno}]`, "the container joined the pinned IPC namespace");
        assert.equal((await exec(id, ["readlink", "/proc/self/ns/uts"])).out.trim(), `uts:[${utsIno}]`, "the container joined the pinned UTS namespace");
        assert.equal((await exec(id, ["hostname"])).out.trim(), "pinned-host");
        assert.equal((await exec(id, ["cat", "/proc/sys/kernel/shmmni"])).out.trim(), "4001");
        assert.equal((await exec(id, ["cat", "/proc/sys/fs/mqueue/msg_max"])).out.trim(), "20");
        assert.equal((await exec(id, ["cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"])).out.trim(), "81");
        assert.equal((await exec(id, ["cat", "/proc/sys/net/ipv4/conf/eth0/accept_local"])).out.trim(), "1");
        assert.equal((await exec(id, ["cat", "/proc/1/comm"])).out, "sleep\n", "its own pid namespace: its own command is pid 1");
      }
      assert.notEqual((await exec(a, ["readlink", "/proc/self/ns/pid"])).out, (await exec(b, ["readlink", "/proc/self/ns/pid"])).out, "a pid namespace each");
      // A shared memory segment made in the pod's IPC namespace is seen by both containers, not by the host.
      const segments = async (id: string) => (await sh(id, "awk 'NR>1 {print $1, $2}' /proc/sysvipc/shm")).split("\n").filter(Boolean);
      assert.deepEqual(await segments(a), [], "a new IPC namespace: no segments");
      const seg = execFileSync("nsenter", [`--ipc=${i.pins!.ipc}`, "ipcmk", "-M", "4096"], { encoding: "utf8" }).trim().replace(/^Shared memory id: /, "");
      const [keyAndId] = await segments(a);
      assert.equal(keyAndId?.split(" ")[1], seg, `segment ${seg} visible in the first container`);
      assert.deepEqual(await segments(b), [keyAndId], "and in the second");
      const hostKeys = readFileSync("/proc/sysvipc/shm", "utf8").split("\n").slice(1).map((l) => l.trim().split(/\s+/)[0]);
      assert.ok(!hostKeys.includes(keyAndId!.split(" ")[0]), "not in the host's IPC namespace");
      // The pinned UTS namespace itself holds the pod's hostname.
      assert.equal(execFileSync("nsenter", [`--uts=${i.pins!.uts}`, "hostname"], { encoding: "utf8" }).trim(), "pinned-host");
      // Stats: network counters of the pod's netns (now from a running container), as with an infra process.
      const stats = (await c().podSandboxStats({ podSandboxId: p.id })).stats!;
      assert.ok(stats.linux?.network?.interfaces.some((x) => x.name === "eth0"), "eth0 counters from the pinned netns");
      assert.ok(stats.linux?.memory, "memory of the pod's containers");

      // Stop: not ready, the pins are released with the containers and the netns.
      await c().stopPodSandbox({ podSandboxId: p.id });
      assert.equal((await c().podSandboxStatus({ podSandboxId: p.id })).status?.state, PodSandboxState.SANDBOX_NOTREADY);
      assert.deepEqual(mountsUnder(join(i.podDir, "ns"), readFileSync("/proc/self/mountinfo", "utf8")), [], "the pins are unmounted on stop");
      await c().removePodSandbox({ podSandboxId: p.id });
      assert.deepEqual(podMounts(p.id), [], "no mount of the pod is left");
      assert.ok(!existsSync(i.podDir), "the pod directory is gone");
    });

    test("pid POD: the infra process stays; containers see each other's pids and catatonit as pid 1", async () => {
      const p = await runPod(NamespaceMode.POD, { hostname: "shared-pids" });
      const i = await info(p.id);
      assert.ok(i.pid > 0, "an infra pid");
      assert.equal(i.pins, undefined, "no pins");
      assert.equal(readFileSync(`/proc/${i.pid}/comm`, "utf8"), "catatonit\n");
      assert.ok(runcIds(env.b.state).includes(p.id), "runc runs the infra");
      const a = await start(p, ["sh", "-c", "exec sleep 3601"]);
      const b = await start(p);
      assert.equal((await exec(b, ["cat", "/proc/1/comm"])).out, "catatonit\n");
      assert.match(await sh(b, "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"), /sleep 3601/, "b sees a's process");
      for (const id of [a, b]) {
        assert.equal((await exec(id, ["hostname"])).out.trim(), "shared-pids");
        assert.equal((await exec(id, ["readlink", "/proc/self/ns/ipc"])).out.trim(), readlinkSync(`/proc/${i.pid}/ns/ipc`));
      }
      await c().removePodSandbox({ podSandboxId: p.id });
      assert.ok(!runcIds(env.b.state).includes(p.id), "the infra's runtime state is deleted");
      assert.deepEqual(podMounts(p.id), []);
    });

    test("a container asking pid POD (or leaving it at the protobuf default) in a pod without a shared PID namespace gets the pod's mode: its own PID namespace", async () => {
      const p = await runPod(NamespaceMode.CONTAINER);
      const { containerId } = await c().createContainer({
        podSandboxId: p.id, sandboxConfig: p.config,
        config: {
          metadata: { name: "wants-pod-pid", attempt: 0 }, image: { image: busybox }, command: ["sleep", "3600"],
          linux: { securityContext: { namespaceOptions: { pid: NamespaceMode.POD, ...(userns ? { usernsOptions: { mode: NamespaceMode.POD, uids: [UIDS], gids: [GIDS] } } : {}) } } },
        },
      });
      await c().startContainer({ containerId });
      assert.equal((await exec(containerId, ["cat", "/proc/1/comm"])).out, "sleep\n", "its own pid 1");
      assert.notEqual((await exec(containerId, ["readlink", "/proc/self/ns/pid"])).out.trim(), readlinkSync("/proc/self/ns/pid"));
      await c().removePodSandbox({ podSandboxId: p.id });
      assert.deepEqual(podMounts(p.id), []);
    });

    test("a sysctl value the kernel refuses in the pin step: INVALID_ARGUMENT naming it, and everything is rolled back", async () => {
      const leases = await env.net.leases();
      const mountsBefore = mountsUnder(join(env.b.state, "sandboxes"), readFileSync("/proc/self/mountinfo", "utf8"), true);
      const dirsBefore = readdirSync(join(env.b.state, "sandboxes")).length;
      const netnsBefore = existsSync(join(env.b.state, "netns")) ? readdirSync(join(env.b.state, "netns")).length : 0;
      await assert.rejects(runPod(NamespaceMode.CONTAINER, { linux: { sysctls: { "kernel.shmmni": "lots" } } }), (e) => {
        assert.equal(codeOf(e), grpc.status.INVALID_ARGUMENT, (e as Error).message);
        assert.match((e as Error).message, /kernel\.shmmni = "lots"/);
        return true;
      });
      assert.deepEqual(await env.net.leases(), leases, "no IP lease leaked");
      assert.equal(existsSync(join(env.b.state, "netns")) ? readdirSync(join(env.b.state, "netns")).length : 0, netnsBefore, "no netns leaked");
      assert.equal(readdirSync(join(env.b.state, "sandboxes")).length, dirsBefore, "no pod directory leaked");
      assert.deepEqual(mountsUnder(join(env.b.state, "sandboxes"), readFileSync("/proc/self/mountinfo", "utf8"), true), mountsBefore, "no pin or shm mount leaked");
      if (userns) assert.equal(readdirSync(join(env.b.state, "userns", "pods")).length, (await c().listPodSandbox({})).items.length, "no user namespace pin leaked");
    });

    test("kill -9 of berthd and a restart: pods of both kinds are READY, keep working, and remove cleanly", async () => {
      const noInfra = await runPod(NamespaceMode.CONTAINER, { hostname: "survivor" });
      const withInfra = await runPod(NamespaceMode.POD, { hostname: "survivor2" });
      const ca = await start(noInfra);
      const cb = await start(withInfra);
      const pins = (await info(noInfra.id)).pins!;
      await env.b.kill9();
      await env.b.restart();
      for (const p of [noInfra, withInfra]) {
        assert.equal((await c().podSandboxStatus({ podSandboxId: p.id })).status?.state, PodSandboxState.SANDBOX_READY, `pod ${p.id} ready after restart`);
        assert.ok((await c().listPodSandbox({ filter: { state: { state: PodSandboxState.SANDBOX_READY } } })).items.some((x) => x.id === p.id));
      }
      assert.equal((await exec(ca, ["hostname"])).out.trim(), "survivor");
      assert.equal((await exec(cb, ["hostname"])).out.trim(), "survivor2");
      // A new container still joins the pins after the restart.
      const cc = await start(noInfra);
      assert.equal((await exec(cc, ["readlink", "/proc/self/ns/ipc"])).out.trim(), `ipc:[${statSync(pins.ipc).ino}]`);
      for (const p of [noInfra, withInfra]) await c().removePodSandbox({ podSandboxId: p.id });
      for (const p of [noInfra, withInfra]) assert.deepEqual(podMounts(p.id), [], `no mount of ${p.id} left`);
      assert.ok(!runcIds(env.b.state).includes(withInfra.id));
    });

    if (!userns) {
      test("host network and host IPC: only what the pod owns is pinned, and the container uses the host's uts and ipc", async () => {
        const p = await runPod(NamespaceMode.CONTAINER, { ns: { network: NamespaceMode.NODE } });
        const i = await info(p.id);
        assert.equal(i.pid, 0);
        assert.equal(i.pins!.uts, "", "host network: the host's UTS namespace");
        assert.ok(i.pins!.ipc, "its own IPC namespace, pinned");
        const id = await start(p);
        assert.equal((await exec(id, ["readlink", "/proc/self/ns/uts"])).out.trim(), readlinkSync("/proc/self/ns/uts"));
        assert.equal((await exec(id, ["readlink", "/proc/self/ns/ipc"])).out.trim(), `ipc:[${statSync(i.pins!.ipc).ino}]`);
        await c().removePodSandbox({ podSandboxId: p.id });
        const q = await runPod(NamespaceMode.NODE, { ns: { network: NamespaceMode.NODE, ipc: NamespaceMode.NODE } });
        const j = await info(q.id);
        assert.deepEqual([j.pid, j.pins], [0, { ipc: "", uts: "" }], "nothing to pin, nothing to run");
        assert.equal((await c().podSandboxStatus({ podSandboxId: q.id })).status?.state, PodSandboxState.SANDBOX_READY);
        const k = await start(q);
        assert.equal((await exec(k, ["readlink", "/proc/self/ns/ipc"])).out.trim(), readlinkSync("/proc/self/ns/ipc"));
        await c().removePodSandbox({ podSandboxId: q.id });
        assert.deepEqual([...podMounts(p.id), ...podMounts(q.id)], []);
      });
    }
  });
}

suite("pods without an infra process", false);
suite("pods without an infra process, with their own user namespace", true);

describe("runtime.drop_infra = false", () => {
  let env: PodEnv;
  before(async () => { env = await startPodEnv({ toml: "[runtime]\ndrop_infra = false\n" }); });
  after(async () => { await env?.cleanup(); });

  test("every pod gets an infra process, also with pid CONTAINER", async () => {
    const c = env.b.client.runtime;
    const { podSandboxId: id } = await c.runPodSandbox({ config: podConfig() });
    const i = JSON.parse((await c.podSandboxStatus({ podSandboxId: id, verbose: true })).info["info"]!) as Info;
    assert.ok(i.pid > 0);
    assert.equal(i.pins, undefined);
    assert.equal(readFileSync(`/proc/${i.pid}/comm`, "utf8"), "catatonit\n");
    await c.removePodSandbox({ podSandboxId: id });
    assert.ok(!existsSync(`/proc/${i.pid}`) || readFileSync(`/proc/${i.pid}/stat`, "utf8").includes(") Z"), "infra process is gone");
  });
});
