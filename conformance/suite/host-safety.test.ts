// What an unprivileged host user and a service manager can do to berth's data and containers.
// 1. Modes (the class of CVE-2021-41091): an image ships a setuid-root binary and a device node,
//    a container makes another setuid-root file in its upper dir; the host user nobody can reach
//    none of them, nor list berth's directories. berthd repairs wrong modes at start-up.
// 2. A service manager's stop (systemd's KillMode=control-group), simulated by killing every
//    process in berthd's own cgroup: conmons live elsewhere, so containers keep running, an exit
//    while berthd is down is recorded, and everything can be removed afterwards.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, lstatSync, readdirSync, readFileSync, statSync } from "node:fs";
import { chmod, mkdir, readFile, rmdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ContainerState } from "../../proto/gen/runtime/v1/api_pb.js";
import { buildImage, layerBlob } from "../../hack/registry/oci-image.ts";
import { pushImage } from "../../hack/registry/push.ts";
import { buildTar } from "../../hack/registry/tar-writer.ts";
import { detectCgroupLayout } from "../../oci-runtime/cgroups/mode.ts";
import { cgroupDirs } from "../../oci-runtime/cgroups/paths.ts";
import { cgroupsOf, prepareCgroup } from "../../oci-runtime/monitor/conmon-cgroup.ts";
import { codeOf, grpc } from "../lib/cri-client.ts";
import { busyboxEntries } from "../lib/images.ts";
import { podConfig, startPodEnv, type PodEnv } from "../lib/pod.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mode = (p: string) => statSync(p).mode & 0o7777;
const alive = (pid: number) => existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z");

type Probe = { op: "list" | "stat" | "exec" | "open"; path: string };
/** Runs each probe as the host user nobody (uid/gid 65534, no groups); returns the errno code of each ("OK" when it worked). */
function asNobody(probes: Probe[]): string[] {
  const script = `
    const fs = require("node:fs"), cp = require("node:child_process");
    const out = [];
    for (const p of JSON.parse(process.argv[1])) {
      try {
        if (p.op === "list") fs.readdirSync(p.path);
        else if (p.op === "stat") fs.statSync(p.path);
        else if (p.op === "open") fs.closeSync(fs.openSync(p.path, "r"));
        else { const r = cp.spawnSync(p.path, ["true"]); if (r.error) throw r.error; }
        out.push("OK");
      } catch (e) { out.push(e.code ?? String(e)); }
    }
    process.stdout.write(JSON.stringify(out));`;
  const r = spawnSync(process.execPath, ["-e", script, JSON.stringify(probes)], { uid: 65534, gid: 65534, encoding: "utf8", timeout: 30_000 });
  assert.equal(r.status, 0, `the probe as nobody failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as string[];
}

describe("host safety: a non-root host user reaches nothing under root and state", () => {
  let env: PodEnv;
  let hostile: string;
  const rt = () => env.b.client.runtime;

  before(async () => {
    env = await startPodEnv({ images: true });
    // The test's own directory is open to everyone, so only berth's modes stand between nobody and the data.
    await chmod(env.b.dir, 0o755);
    const layer = layerBlob(buildTar([
      ...busyboxEntries(),
      { name: "suid-root", data: readFileSync("/usr/bin/busybox"), mode: 0o4755 },
      { name: "dev", type: "dir", mode: 0o755 },
      { name: "dev/host-mem", type: "char", devmajor: 1, devminor: 1, mode: 0o666 },
    ]), "gzip");
    await pushImage({ address: env.images!.registry.address }, "berth-test/hostile", "latest", buildImage([layer], { Env: ["PATH=/bin"], Cmd: ["sh"] }));
    hostile = `${env.images!.registry.address}/berth-test/hostile:latest`;
    await env.b.client.image.pullImage({ image: { image: hostile } });
  });
  after(async () => { await env.cleanup(); });

  /** The paths, found as root: the layer's setuid file and device node, a container's setuid file in its upper dir. */
  function findTargets(upperName: string) {
    const snaps = join(env.b.root, "snapshots");
    const layers = readdirSync(snaps).filter((n) => /^[a-f0-9]{64}$/.test(n)).map((n) => join(snaps, n, "fs"));
    const suid = layers.map((l) => join(l, "suid-root")).find(existsSync);
    const dev = layers.map((l) => join(l, "dev", "host-mem")).find(existsSync);
    const uppers = readdirSync(join(snaps, "containers")).map((k) => join(snaps, "containers", k, "upper", upperName)).filter(existsSync);
    return { suid, dev, upper: uppers[0] };
  }

  test("nobody cannot list berth's dirs nor reach setuid files and device nodes from layers and upper dirs; a non-root container still works", async () => {
    const cfg = podConfig({ linux: { securityContext: { runAsUser: { value: 1000n }, runAsGroup: { value: 1000n } } } });
    const podId = (await rt().runPodSandbox({ config: cfg })).podSandboxId;
    // as root inside: a setuid-root copy of busybox in the upper dir
    const root = (await rt().createContainer({
      podSandboxId: podId, sandboxConfig: cfg,
      config: {
        metadata: { name: "suid-maker" }, image: { image: hostile }, command: ["sh", "-c", "cp /bin/busybox /made-suid && chmod 4755 /made-suid && sleep 100000"],
        linux: { securityContext: { runAsUser: { value: 0n } } },
      },
    })).containerId;
    await rt().startContainer({ containerId: root });
    // a non-root container on the same layers: its rootfs, /tmp, /etc/hosts and exec keep working under 0700 parents
    const user = (await rt().createContainer({
      podSandboxId: podId, sandboxConfig: cfg,
      config: { metadata: { name: "non-root" }, image: { image: hostile }, command: ["sleep", "100000"], linux: { securityContext: { runAsUser: { value: 1000n }, runAsGroup: { value: 1000n } } } },
    })).containerId;
    await rt().startContainer({ containerId: user });
    const ex = await rt().execSync({ containerId: user, cmd: ["sh", "-c", "id -u; echo hi > /tmp/f && cat /tmp/f && cat /etc/hosts >/dev/null && ls / >/dev/null && echo done"], timeout: 20n });
    assert.equal(ex.exitCode, 0, `non-root exec failed: ${Buffer.from(ex.stderr).toString()}`);
    assert.equal(Buffer.from(ex.stdout).toString(), "1000\nhi\ndone\n");
    assert.equal((await rt().containerStatus({ containerId: user })).status!.state, ContainerState.CONTAINER_RUNNING);

    let t = findTargets("made-suid");
    for (let i = 0; i < 100 && !t.upper; i++) { await sleep(100); t = findTargets("made-suid"); }
    assert.ok(t.suid && t.dev && t.upper, `fixtures exist (as root): ${JSON.stringify(t)}`);
    assert.equal(mode(t.suid) & 0o4000, 0o4000, "the layer's file is setuid");
    assert.ok(statSync(t.dev).isCharacterDevice(), "the layer's device node exists");
    assert.equal(mode(t.upper) & 0o4000, 0o4000, "the container made a setuid file in its upper dir");

    const dirs = [env.b.root, env.b.state, join(env.b.root, "snapshots"), join(env.b.root, "content"), join(env.b.root, "containers"),
      join(env.b.root, "sandboxes"), join(env.b.state, "containers"), join(env.b.state, "sandboxes")];
    const probes: Probe[] = [
      ...dirs.map((path): Probe => ({ op: "list", path })),
      { op: "stat", path: t.suid }, { op: "exec", path: t.suid },
      { op: "stat", path: t.upper }, { op: "exec", path: t.upper },
      { op: "open", path: t.dev },
      { op: "stat", path: join(env.b.state, "containers", root, "config.json") },
    ];
    const got = asNobody(probes);
    assert.deepEqual(got.map((code, i) => `${probes[i]!.op} ${probes[i]!.path}: ${code}`), probes.map((p) => `${p.op} ${p.path}: EACCES`));
    // the socket stays reachable for its group: the way to it is search-only, the socket itself 0660
    assert.equal(mode(env.b.state), 0o711);
    assert.equal(mode(env.b.socket), 0o660);
    assert.equal(mode(env.b.root), 0o700);
    for (const d of dirs.slice(2)) assert.equal(mode(d), 0o700, d);
    assert.equal(mode(join(env.b.state, "containers", root)), 0o700, "bundle dir");
    // every entry of root and state, whoever made it (berthd, runc, conmon, CNI), with running containers
    const open: string[] = [];
    for (const top of [env.b.root, env.b.state]) {
      for (const n of readdirSync(top)) {
        const p = join(top, n);
        if (p === env.b.socket) continue;
        const st = lstatSync(p);
        if (st.isSymbolicLink()) continue;
        const allowed = p === join(env.b.state, "userns") ? 0o711 : 0o700;
        if ((st.mode & 0o777 & ~allowed) !== 0) open.push(`${p} ${(st.mode & 0o7777).toString(8)}`);
      }
    }
    assert.deepEqual(open, [], "no entry of root or state is open to group or others");
    assert.equal(mode(join(env.b.state, "containers", root, "config.json")), 0o600, "bundle config.json");

    for (const id of [root, user]) {
      await rt().stopContainer({ containerId: id, timeout: 0n });
      await rt().removeContainer({ containerId: id });
    }
    await rt().stopPodSandbox({ podSandboxId: podId });
    await rt().removePodSandbox({ podSandboxId: podId });
  });

  test("berthd fixes modes an older version left (0755 dirs, 0644 bundle) at start-up and logs them", async () => {
    const cfg = podConfig();
    const podId = (await rt().runPodSandbox({ config: cfg })).podSandboxId;
    const id = (await rt().createContainer({ podSandboxId: podId, sandboxConfig: cfg, config: { metadata: { name: "c" }, image: { image: hostile }, command: ["sleep", "100000"] } })).containerId;
    await rt().startContainer({ containerId: id });
    const bundle = join(env.b.state, "containers", id);
    const loosened = [env.b.root, env.b.state, join(env.b.root, "snapshots"), join(env.b.root, "content"), join(env.b.root, "containers"),
      join(env.b.root, "snapshots", "containers"), join(env.b.state, "containers"), bundle];
    await env.b.stop();
    for (const d of loosened) await chmod(d, 0o755);
    await chmod(join(bundle, "config.json"), 0o644);
    const from = env.b.stderr.length;
    await env.b.restart();
    assert.equal(mode(env.b.state), 0o711, "state: search-only, on the way to the socket");
    for (const d of loosened.filter((d) => d !== env.b.state)) assert.equal(mode(d), 0o700, d);
    assert.equal(mode(join(bundle, "config.json")), 0o600);
    const fixed = env.b.stderr.slice(from).join("").split("\n").filter((l) => l.includes("fixed the mode of a berth path"));
    assert.ok(fixed.length >= loosened.length + 1, `each fix is logged: ${fixed.join("\n")}`);
    assert.ok(fixed.some((l) => l.includes(`"path":"${join(bundle, "config.json")}"`) && l.includes('"from":"0644"') && l.includes('"to":"0600"')), fixed.join("\n"));
    assert.deepEqual(asNobody([{ op: "list", path: env.b.root }, { op: "list", path: join(env.b.root, "snapshots") }]), ["EACCES", "EACCES"]);
    // the container survived the restart and is still usable
    assert.equal((await rt().containerStatus({ containerId: id })).status!.state, ContainerState.CONTAINER_RUNNING);
    await rt().stopContainer({ containerId: id, timeout: 0n });
    await rt().removeContainer({ containerId: id });
    await rt().removePodSandbox({ podSandboxId: podId });
  });
});

describe("host safety: a service manager's stop of berthd's cgroup spares the containers", () => {
  let env: PodEnv;
  /** berthd's own cgroup, one dir per hierarchy (as a systemd service has). */
  const svc: string[] = [];
  const name = `berth-svc-${randomBytes(4).toString("hex")}`;
  const rt = () => env.b.client.runtime;

  before(async () => {
    const layout = await detectCgroupLayout();
    const own = await cgroupsOf(process.pid);
    const wanted = ["pids", "memory", "cpu", "name=systemd"];
    for (const h of layout.v1) {
      const key = h.controllers.find((c) => wanted.includes(c));
      if (key === undefined || !own.has(key)) continue;
      svc.push(join(h.mountPoint, own.get(key)!, name));
    }
    if (layout.v2) svc.push(join(layout.v2, own.get("") ?? "/", name));
    assert.ok(svc.length > 0, `no cgroup hierarchy to put berthd in: ${JSON.stringify(layout)}`);
    for (const d of svc) await mkdir(d);
    env = await startPodEnv({ images: true, cgroups: svc });
    await env.b.client.image.pullImage({ image: { image: env.images!.busybox } });
  });
  after(async () => {
    await env?.cleanup();
    for (const d of svc) await rmdir(d).catch((err) => { throw new Error(`cgroup ${d} left behind: ${(err as Error).message}`); });
  });

  const procsOf = async (dir: string) => (await readFile(join(dir, "cgroup.procs"), "utf8")).split("\n").filter(Boolean).map(Number);

  test("kill -9 of every process in berthd's cgroup, then a restart: 4 containers keep their pids, an exit meanwhile is recorded, all removable", async () => {
    const berthdPid = env.b.proc.pid!;
    for (const d of svc) assert.ok((await procsOf(d)).includes(berthdPid), `berthd runs in ${d}`);
    const cfg = podConfig();
    const podId = (await rt().runPodSandbox({ config: cfg })).podSandboxId;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      // the fifth exits with 7 once /tmp/go exists, which the test creates while berthd is down
      const command = i === 4 ? ["sh", "-c", "while [ ! -e /tmp/go ]; do sleep 1; done; exit 7"] : ["sleep", "100000"];
      const { containerId } = await rt().createContainer({ podSandboxId: podId, sandboxConfig: cfg, config: { metadata: { name: `c${i}` }, image: { image: env.images!.busybox }, command } });
      await rt().startContainer({ containerId });
      ids.push(containerId);
    }
    const info = new Map<string, { pid: number; conmonPid: number }>();
    for (const id of ids) info.set(id, JSON.parse((await rt().containerStatus({ containerId: id, verbose: true })).info["info"]!) as { pid: number; conmonPid: number });
    const inSvc = new Set<number>();
    for (const d of svc) for (const p of await procsOf(d)) inSvc.add(p);
    for (const [id, { pid, conmonPid }] of info) {
      assert.ok(!inSvc.has(conmonPid), `conmon ${conmonPid} of ${id} is out of berthd's cgroup`);
      assert.ok(!inSvc.has(pid), `container ${id} is out of berthd's cgroup`);
      const cg = await cgroupsOf(conmonPid);
      assert.equal(cg.get("pids"), `/berth/berth-conmon-${id}`, `conmon of ${id} is in its pod's conmon cgroup`);
      assert.equal(cg.get("memory"), `/berth/berth-conmon-${id}`);
    }
    const exiting = ids[4]!;

    // What systemd's stop does with KillMode=control-group: SIGKILL to everything in the cgroup, until it is empty.
    env.b.client.close();
    const killedAt = Date.now();
    for (let round = 0; ; round++) {
      const pids = new Set<number>();
      for (const d of svc) for (const p of await procsOf(d)) pids.add(p);
      if (pids.size === 0) break;
      assert.ok(round < 100, `berthd's cgroup is not empty after 100 rounds of SIGKILL: ${[...pids].join(" ")}`);
      for (const p of pids) try { process.kill(p, "SIGKILL"); } catch { /* gone */ }
      await sleep(50);
    }
    for (let i = 0; i < 100 && env.b.proc.exitCode === null && env.b.proc.signalCode === null; i++) await sleep(50);
    assert.equal(env.b.proc.signalCode, "SIGKILL");
    for (const [id, { pid, conmonPid }] of info) {
      if (id === exiting) continue;
      assert.ok(alive(pid) && alive(conmonPid), `container ${id} and its conmon survive the stop`);
    }
    // the exiting container finishes while berthd is down (its rootfs is mounted in the host's mount namespace)
    assert.ok(alive(info.get(exiting)!.pid));
    await writeFile(join(env.b.state, "containers", exiting, "rootfs", "tmp", "go"), "");
    const exitFile = join(env.b.state, "exits", exiting);
    for (let i = 0; i < 200 && !existsSync(exitFile); i++) await sleep(50);
    assert.ok(existsSync(exitFile), "conmon recorded the exit while berthd was down");
    const restartAt = Date.now();

    await env.b.restart();
    for (const d of svc) assert.ok((await procsOf(d)).includes(env.b.proc.pid!), `the new berthd runs in ${d}`);
    for (const [id, { pid }] of info) {
      const r = await rt().containerStatus({ containerId: id, verbose: true });
      if (id === exiting) {
        assert.equal(r.status!.state, ContainerState.CONTAINER_EXITED);
        assert.equal(r.status!.exitCode, 7);
        const finishedMs = Number(r.status!.finishedAt / 1_000_000n);
        assert.ok(finishedMs >= killedAt - 1000 && finishedMs <= restartAt + 1000, `finished while berthd was down: ${new Date(finishedMs).toISOString()}`);
        assert.ok(r.status!.finishedAt > r.status!.startedAt);
        continue;
      }
      assert.equal(r.status!.state, ContainerState.CONTAINER_RUNNING, `container ${id} is RUNNING after the restart`);
      assert.equal((JSON.parse(r.info["info"]!) as { pid: number }).pid, pid, `container ${id} keeps its pid`);
      assert.ok(alive(pid));
    }
    for (const id of ids) {
      await rt().stopContainer({ containerId: id, timeout: 0n });
      await rt().removeContainer({ containerId: id });
    }
    assert.deepEqual((await rt().listContainers({})).containers, []);
    for (const { pid, conmonPid } of info.values()) assert.ok(!alive(pid) && !alive(conmonPid));
    const layout = await detectCgroupLayout();
    for (const id of ids) {
      for (const h of layout.v1) assert.ok(!existsSync(join(h.mountPoint, "berth", `berth-conmon-${id}`)), `conmon cgroup of ${id} removed from ${h.mountPoint}`);
    }
    await rt().stopPodSandbox({ podSandboxId: podId });
    await rt().removePodSandbox({ podSandboxId: podId });
  });
});

describe("host safety: runtime.conmon_cgroup set to a shared cgroup", () => {
  let env: PodEnv;
  const name = `berth-test-conmon-${randomBytes(4).toString("hex")}`;
  const rt = () => env.b.client.runtime;

  before(async () => {
    // created here too (berthd creates it at the first container), so each test stands alone
    await prepareCgroup(await detectCgroupLayout(), name);
    env = await startPodEnv({ images: true, toml: `[runtime]\nconmon_cgroup = "${name}"\n` });
    await env.b.client.image.pullImage({ image: { image: env.images!.busybox } });
  });
  after(async () => {
    await env?.cleanup();
    const layout = await detectCgroupLayout();
    for (const d of cgroupDirs(layout, name)) await rmdir(d).catch((err: NodeJS.ErrnoException) => { if (err.code !== "ENOENT") throw err; });
  });

  test("every conmon runs in that cgroup in each hierarchy, which outlives the containers", async () => {
    const cfg = podConfig();
    const podId = (await rt().runPodSandbox({ config: cfg })).podSandboxId;
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const { containerId } = await rt().createContainer({ podSandboxId: podId, sandboxConfig: cfg, config: { metadata: { name: `c${i}` }, image: { image: env.images!.busybox }, command: ["sleep", "100000"] } });
      await rt().startContainer({ containerId });
      ids.push(containerId);
    }
    const layout = await detectCgroupLayout();
    const conmons: number[] = [];
    for (const id of ids) {
      const { conmonPid, pid } = JSON.parse((await rt().containerStatus({ containerId: id, verbose: true })).info["info"]!) as { pid: number; conmonPid: number };
      conmons.push(conmonPid);
      const cg = await cgroupsOf(conmonPid);
      for (const h of layout.v1) for (const c of h.controllers) assert.equal(cg.get(c), `/${name}`, `conmon of ${id} in ${c}`);
      if (layout.v2) assert.equal(cg.get(""), `/${name}`, `conmon of ${id} in the v2 tree`);
      assert.equal((await cgroupsOf(pid)).get("pids"), `/berth/berth-${id}`, "the container keeps its own cgroup");
    }
    const procs = (await readFile(join(cgroupDirs(layout, name)[0]!, "cgroup.procs"), "utf8")).split("\n").filter(Boolean).map(Number);
    for (const p of conmons) assert.ok(procs.includes(p));
    for (const id of ids) {
      await rt().stopContainer({ containerId: id, timeout: 0n });
      await rt().removeContainer({ containerId: id });
    }
    assert.ok(existsSync(cgroupDirs(layout, name)[0]!), "the shared cgroup stays");
    await rt().removePodSandbox({ podSandboxId: podId });
  });

  test("a conmon that cannot run in its cgroup fails the create with its reason and leaves nothing behind", async (t) => {
    const layout = await detectCgroupLayout();
    const pids = layout.v1.find((h) => h.controllers.includes("pids"))?.mountPoint ?? layout.v2;
    assert.ok(pids, "a pids controller");
    const max = join(pids, name, "pids.max");
    assert.ok(existsSync(max), `the shared cgroup exists in the pids hierarchy: ${max}`);
    // joining works, but conmon cannot fork there
    await writeFile(max, "0");
    t.after(() => writeFile(max, "max"));
    const cfg = podConfig();
    const podId = (await rt().runPodSandbox({ config: cfg })).podSandboxId;
    await assert.rejects(
      rt().createContainer({ podSandboxId: podId, sandboxConfig: cfg, config: { metadata: { name: "nofork" }, image: { image: env.images!.busybox }, command: ["sleep", "100000"] } }),
      (err: Error) => codeOf(err) === grpc.status.INTERNAL && /create container \w+: (\[conmon:e\]: Failed to fork the create command|cannot fork the monitor:) Resource temporarily unavailable/.test(err.message),
    );
    assert.deepEqual((await rt().listContainers({})).containers, []);
    assert.deepEqual(readdirSync(join(env.b.state, "containers")), [], "no bundle left");
    assert.deepEqual((await readFile(join(pids, name, "cgroup.procs"), "utf8")).trim(), "", "no conmon left in the cgroup");
    await rt().removePodSandbox({ podSandboxId: podId });
  });
});
