// Containers over the real socket (real runc, conmon, CNI and registry): lifecycle in every
// state order, ListContainers filters, ContainerStatus fields and reasons, process args,
// env, working dir, volumes and propagation, users and groups, bad input and rollback.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ContainerEventType, ContainerState, MountPropagation, Signal, SupplementalGroupsPolicy } from "../../proto/gen/runtime/v1/api_pb.js";
import { codeOf, grpc } from "../lib/cri-client.ts";
import { podConfig, startPodEnv, type PodEnv } from "../lib/pod.ts";

type Cfg = Record<string, unknown>;
/** KeyValue.value is bytes in this proto (wire-compatible with upstream's string). */
const enc = (s: string) => new TextEncoder().encode(s);

describe("containers", () => {
  let env: PodEnv;
  let podId = "";
  let podCfg: ReturnType<typeof podConfig>;
  let tmp = "";
  let n = 0;
  const rt = () => env.b.client.runtime;

  before(async () => {
    env = await startPodEnv({ images: true });
    tmp = await mkdtemp(join(tmpdir(), "berth-ctr-"));
    for (const image of [env.images!.busybox, env.images!.user, env.images!.entrypoint]) await env.b.client.image.pullImage({ image: { image } });
    podCfg = podConfig();
    podId = (await rt().runPodSandbox({ config: podCfg })).podSandboxId;
  });
  after(async () => {
    await env.cleanup();
    spawnSync("umount", ["-R", "-l", tmp]);
    await rm(tmp, { recursive: true, force: true });
  });

  /** Creates a container in the shared pod (busybox unless `image` says otherwise). */
  async function create(over: Cfg = {}, opts: { pod?: string; podCfg?: unknown } = {}): Promise<string> {
    const config = { metadata: { name: `c${++n}`, attempt: 0 }, image: { image: env.images!.busybox }, command: ["sleep", "1000"], ...over };
    const r = await rt().createContainer({ podSandboxId: opts.pod ?? podId, config: config as never, sandboxConfig: (opts.podCfg ?? podCfg) as never });
    return r.containerId;
  }
  async function run(over: Cfg = {}, opts: { pod?: string; podCfg?: unknown } = {}): Promise<string> {
    const id = await create(over, opts);
    await rt().startContainer({ containerId: id });
    return id;
  }
  const status = async (id: string, verbose = false) => (await rt().containerStatus({ containerId: id, verbose })).status!;
  async function waitExited(id: string, ms = 20_000) {
    const end = Date.now() + ms;
    for (;;) {
      const st = await status(id);
      if (st.state === ContainerState.CONTAINER_EXITED) return st;
      if (Date.now() > end) assert.fail(`container ${id} did not exit within ${ms} ms (state ${st.state})`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  /** Runs `sh -c script` to completion and returns what it printed to its log... via exec in a sleeper instead. */
  async function sh(id: string, script: string): Promise<{ out: string; err: string; code: number }> {
    const r = await rt().execSync({ containerId: id, cmd: ["sh", "-c", script], timeout: 20n });
    return { out: Buffer.from(r.stdout).toString(), err: Buffer.from(r.stderr).toString(), code: r.exitCode };
  }
  async function cleanupIds(...ids: string[]) {
    for (const id of ids) await rt().removeContainer({ containerId: id });
  }
  /** What a create could leak: mounts under berthd's dir, conmon processes for it, runc state. */
  async function leakSnapshot() {
    const mounts = (await readFile("/proc/self/mountinfo", "utf8")).split("\n").filter((l) => l.includes(env.b.dir)).length;
    const conmons = spawnSync("pgrep", ["-f", `conmon.*${env.b.state}`], { encoding: "utf8" }).stdout.split("\n").filter(Boolean).length;
    const runc = JSON.parse(execFileSync("runc", ["--root", `${env.b.state}/runc`, "list", "--format", "json"], { encoding: "utf8" }) || "null") as unknown[] | null;
    const bundles = existsSync(`${env.b.state}/containers`) ? readdirSync(`${env.b.state}/containers`).length : 0;
    const records = (await rt().listContainers({})).containers.length;
    return { mounts, conmons, runc: (runc ?? []).length, bundles, records };
  }

  test("create, start, stop, remove: states, idempotency and preconditions", async () => {
    const id = await create();
    assert.match(id, /^[0-9a-f]{64}$/);
    assert.equal((await status(id)).state, ContainerState.CONTAINER_CREATED);
    await rt().startContainer({ containerId: id });
    assert.equal((await status(id)).state, ContainerState.CONTAINER_RUNNING);
    await assert.rejects(rt().startContainer({ containerId: id }), (e) => codeOf(e) === grpc.status.FAILED_PRECONDITION && (e as Error).message.includes(id));
    await rt().stopContainer({ containerId: id, timeout: 0n });
    const st = await status(id);
    assert.equal(st.state, ContainerState.CONTAINER_EXITED);
    assert.equal(st.exitCode, 137);
    await rt().stopContainer({ containerId: id, timeout: 1n }); // stop twice
    assert.equal((await status(id)).state, ContainerState.CONTAINER_EXITED);
    await assert.rejects(rt().startContainer({ containerId: id }), (e) => codeOf(e) === grpc.status.FAILED_PRECONDITION);
    await rt().removeContainer({ containerId: id });
    await rt().removeContainer({ containerId: id });
    await assert.rejects(status(id), (e) => codeOf(e) === grpc.status.NOT_FOUND && (e as Error).message.includes(id));
  });

  test("a created container can be removed; a running one is killed by remove", async () => {
    const before = await leakSnapshot();
    const created = await create();
    await rt().removeContainer({ containerId: created });
    await assert.rejects(status(created), (e) => codeOf(e) === grpc.status.NOT_FOUND);
    const running = await run();
    const pid = JSON.parse((await rt().containerStatus({ containerId: running, verbose: true })).info["info"]!).pid as number;
    assert.ok(pid > 0 && existsSync(`/proc/${pid}`));
    await rt().removeContainer({ containerId: running });
    await assert.rejects(status(running), (e) => codeOf(e) === grpc.status.NOT_FOUND);
    assert.ok(!existsSync(`/proc/${pid}`) || (await readFile(`/proc/${pid}/stat`, "utf8")).includes(") Z"), "the process is gone");
    assert.deepEqual(await leakSnapshot(), before, "nothing is left of either container");
  });

  test("stop uses the image's stop signal and the timeout, then SIGKILL", async () => {
    // The user image's StopSignal is SIGUSR1: a trap on it exits with 42.
    const ready = async (id: string) => {
      for (let i = 0; i < 100 && (await sh(id, "test -f /tmp/ready")).code !== 0; i++) await new Promise((r) => setTimeout(r, 50));
    };
    const id = await run({ image: { image: env.images!.user }, command: ["sh", "-c", "trap 'exit 42' USR1; touch /tmp/ready; while true; do sleep 0.1; done"] });
    await ready(id);
    await rt().stopContainer({ containerId: id, timeout: 10n });
    const st = await status(id);
    assert.equal(st.exitCode, 42, "the trap for SIGUSR1 ran");
    assert.equal(st.reason, "Error");
    // A process ignoring SIGTERM is killed after the timeout.
    const stubborn = await run({ command: ["sh", "-c", "trap '' TERM; touch /tmp/ready; while true; do sleep 0.1; done"] });
    await ready(stubborn);
    await rt().stopContainer({ containerId: stubborn, timeout: 1n });
    assert.equal((await status(stubborn)).exitCode, 137);
    // The CRI's own stop_signal overrides the image's.
    const own = await run({ image: { image: env.images!.user }, stopSignal: Signal.SIGUSR2, command: ["sh", "-c", "trap 'exit 42' USR1; trap 'exit 43' USR2; touch /tmp/ready; while true; do sleep 0.1; done"] });
    await ready(own);
    assert.equal((await status(own)).stopSignal, Signal.SIGUSR2);
    await rt().stopContainer({ containerId: own, timeout: 10n });
    assert.equal((await status(own)).exitCode, 43);
    assert.equal((await status(id)).stopSignal, Signal.SIGUSR1, "the image's stop signal is reported");
    await cleanupIds(id, stubborn, own);
  });

  test("unknown ids: stop and remove succeed, status, start and exec are NOT_FOUND", async () => {
    const unknown = "f".repeat(64);
    await rt().stopContainer({ containerId: unknown, timeout: 0n });
    await rt().removeContainer({ containerId: unknown });
    for (const call of [status(unknown), rt().startContainer({ containerId: unknown }), rt().execSync({ containerId: unknown, cmd: ["true"] })]) {
      await assert.rejects(call, (e) => codeOf(e) === grpc.status.NOT_FOUND && (e as Error).message.includes(unknown));
    }
  });

  test("ListContainers filters by id prefix, state, pod id and labels", async () => {
    const pod2Cfg = podConfig();
    const pod2 = (await rt().runPodSandbox({ config: pod2Cfg })).podSandboxId;
    const a = await create({ labels: { tier: "a", shared: "yes" } });
    const b = await run({ labels: { tier: "b", shared: "yes" } });
    const c = await run({ labels: { tier: "c" } }, { pod: pod2, podCfg: pod2Cfg });
    try {
      const ids = async (filter: unknown) => new Set((await rt().listContainers({ filter: filter as never })).containers.map((x) => x.id));
      const mine = new Set([a, b, c]);
      const only = (s: Set<string>) => new Set([...s].filter((x) => mine.has(x)));
      assert.deepEqual(only(await ids(undefined)), mine);
      assert.deepEqual(await ids({ id: b.slice(0, 10) }), new Set([b]));
      assert.deepEqual(await ids({ id: b }), new Set([b]));
      assert.deepEqual(only(await ids({ state: { state: ContainerState.CONTAINER_CREATED } })), new Set([a]));
      assert.deepEqual(only(await ids({ state: { state: ContainerState.CONTAINER_RUNNING } })), new Set([b, c]));
      assert.deepEqual(only(await ids({ state: { state: ContainerState.CONTAINER_EXITED } })), new Set());
      assert.deepEqual(await ids({ podSandboxId: pod2 }), new Set([c]));
      assert.deepEqual(await ids({ podSandboxId: pod2.slice(0, 12) }), new Set([c]));
      assert.deepEqual(await ids({ labelSelector: { shared: "yes" } }), new Set([a, b]));
      assert.deepEqual(await ids({ labelSelector: { shared: "yes", tier: "b" } }), new Set([b]));
      assert.deepEqual(await ids({ labelSelector: { tier: "nope" } }), new Set());
      assert.deepEqual(await ids({ podSandboxId: podId, labelSelector: { tier: "c" } }), new Set());
      const listed = (await rt().listContainers({ filter: { id: b } })).containers[0]!;
      assert.equal(listed.podSandboxId, podId);
      assert.equal(listed.metadata?.name.startsWith("c"), true);
      assert.equal(listed.state, ContainerState.CONTAINER_RUNNING);
      assert.deepEqual(listed.labels, { tier: "b", shared: "yes" });
      assert.match(listed.imageRef, /^sha256:[0-9a-f]{64}$/, "ListContainers' image_ref is the image id, as containerd's");
    } finally {
      await cleanupIds(a, b, c);
      await rt().removePodSandbox({ podSandboxId: pod2 });
    }
  });

  test("ContainerStatus: times, image, labels, annotations, mounts, log path, reason Completed and Error", async () => {
    const vol = await mkdtemp(join(tmp, "status-vol-"));
    const logDir = await mkdtemp(join(tmp, "logs-"));
    const pCfg = podConfig({ logDirectory: logDir });
    const pod = (await rt().runPodSandbox({ config: pCfg })).podSandboxId;
    try {
      const mounts = [{ containerPath: "/data", hostPath: vol, readonly: true }];
      const ok = await run({ command: ["true"], labels: { l: "1" }, annotations: { "a.b/c": "d" }, mounts, logPath: "ok.log" }, { pod, podCfg: pCfg });
      const bad = await run({ command: ["sh", "-c", "exit 3"], logPath: "bad/bad.log" }, { pod, podCfg: pCfg });
      const st = await waitExited(ok);
      const img = await env.b.client.image.imageStatus({ image: { image: env.images!.busybox } });
      assert.equal(st.reason, "Completed");
      assert.equal(st.exitCode, 0);
      assert.ok(st.createdAt > 1_000_000_000_000_000_000n, `createdAt ${st.createdAt} is in ns`);
      assert.ok(st.createdAt <= st.startedAt && st.startedAt <= st.finishedAt, `created ${st.createdAt} <= started ${st.startedAt} <= finished ${st.finishedAt}`);
      assert.ok(st.finishedAt <= BigInt(Date.now()) * 1_000_000n + 1_000_000_000n);
      assert.equal(st.imageId, img.image!.id);
      assert.equal(st.image?.image, env.images!.busybox, "the image as the pod named it, as containerd reports a tag");
      assert.ok(img.image!.repoDigests.includes(st.imageRef), `imageRef ${st.imageRef} is a repo digest`);
      assert.equal(st.image?.userSpecifiedImage, env.images!.busybox);
      assert.deepEqual(st.labels, { l: "1" });
      assert.deepEqual(st.annotations, { "a.b/c": "d" });
      assert.equal(st.mounts.length, 1);
      assert.equal(st.mounts[0]!.containerPath, "/data");
      assert.equal(st.mounts[0]!.hostPath, vol);
      assert.equal(st.mounts[0]!.readonly, true);
      assert.equal(st.logPath, join(logDir, "ok.log"));
      assert.ok(existsSync(st.logPath));
      const bst = await waitExited(bad);
      assert.equal(bst.reason, "Error");
      assert.equal(bst.exitCode, 3);
      assert.ok(existsSync(join(logDir, "bad", "bad.log")), "nested log directories are created");
      // Verbose: the OCI spec and, while running, the pid.
      const live = await run({ command: ["sleep", "1000"] }, { pod, podCfg: pCfg });
      const v = await rt().containerStatus({ containerId: live, verbose: true });
      const info = JSON.parse(v.info["info"]!);
      assert.ok(info.pid > 0);
      assert.equal((await readFile(`/proc/${info.pid}/cmdline`, "utf8")).split("\0")[0], "sleep");
      assert.deepEqual(info.runtimeSpec.process.args, ["sleep", "1000"]);
      assert.equal(info.runtimeSpec.ociVersion.split(".")[0], "1");
      assert.equal(v.status!.startedAt > 0n && v.status!.finishedAt === 0n, true);
      await cleanupIds(ok, bad, live);
    } finally {
      await rt().removePodSandbox({ podSandboxId: pod });
    }
  });

  test("a container over its memory limit is OOMKilled", async () => {
    const id = await run({
      command: ["sh", "-c", "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo survived"],
      linux: { resources: { memoryLimitInBytes: 8n * 1024n * 1024n, memorySwapLimitInBytes: 8n * 1024n * 1024n } },
    });
    const st = await waitExited(id, 60_000);
    assert.equal(st.reason, "OOMKilled", `reason ${st.reason} exit ${st.exitCode}`);
    assert.notEqual(st.exitCode, 0);
    await cleanupIds(id);
  });

  test("process args follow the CRI rules with the image's entrypoint and cmd; env, working dir", async () => {
    const ep = env.images!.entrypoint;
    // The container's own log is not set in this pod; observe by exec into a sleeper and by the spec.
    const cases: [Cfg, string[]][] = [
      [{}, ["echo", "entry", "cmd-default"]],
      [{ args: ["a1", "a2"] }, ["echo", "entry", "a1", "a2"]],
      [{ command: ["printf"] }, ["printf"]],
      [{ command: ["printf"], args: ["x"] }, ["printf", "x"]],
    ];
    for (const [over, want] of cases) {
      const id = await create({ image: { image: ep }, command: [], ...over });
      const info = JSON.parse((await rt().containerStatus({ containerId: id, verbose: true })).info["info"]!);
      assert.deepEqual(info.runtimeSpec.process.args, want, JSON.stringify(over));
      await rt().removeContainer({ containerId: id });
    }
    const id = await run({
      image: { image: ep }, command: ["sleep", "1000"],
      envs: [{ key: "IMAGE_VAR", value: enc("overridden") }, { key: "MINE", value: enc("a=b c") }],
    });
    const e = await sh(id, "echo \"$IMAGE_VAR|$MINE|$PATH\"; pwd");
    assert.equal(e.out, "overridden|a=b c|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n/tmp\n");
    // berthd's own environment (bin/berthd's GLIBC_TUNABLES) stays out of the container, and of its execs.
    const berthdEnv = readFileSync(`/proc/${env.b.proc.pid}/environ`, "utf8");
    assert.match(berthdEnv, /(^|\0)GLIBC_TUNABLES=[^\0]*glibc\.malloc\.mmap_threshold=131072/, "berthd runs with the pinned threshold");
    assert.equal((await sh(id, "tr '\\0' '\\n' < /proc/1/environ | grep -c GLIBC_TUNABLES; env | grep -c GLIBC_TUNABLES")).out, "0\n0\n");
    const wd = await run({ image: { image: ep }, command: ["sleep", "1000"], workingDir: "/var/www" });
    assert.equal((await sh(wd, "pwd; echo $IMAGE_VAR")).out, "/var/www\nfrom-image\n");
    // The container observes its own args (as pid 1 of its own pid namespace).
    const seen = await run({ image: { image: ep }, command: ["sh", "-c"], args: ["sleep 1000; echo never"], linux: { securityContext: { namespaceOptions: { pid: 1 } } } });
    assert.equal((await sh(seen, "cat /proc/1/cmdline | tr '\\0' ' '")).out, "sh -c sleep 1000; echo never ");
    await cleanupIds(id, wd, seen);
  });

  test("volumes: rw and ro host dirs, a symlinked host path", async () => {
    const rw = await mkdtemp(join(tmp, "rw-"));
    const ro = await mkdtemp(join(tmp, "ro-"));
    const real = await mkdtemp(join(tmp, "real-"));
    await writeFile(join(ro, "hello"), "from host\n");
    await writeFile(join(real, "target"), "via symlink\n");
    const link = join(tmp, "link-to-real");
    await symlink(real, link);
    const id = await run({
      mounts: [
        { containerPath: "/rw", hostPath: rw },
        { containerPath: "/ro", hostPath: ro, readonly: true },
        { containerPath: "/linked", hostPath: link },
      ],
    });
    assert.equal((await sh(id, "echo written > /rw/out && cat /rw/out")).code, 0);
    assert.equal(await readFile(join(rw, "out"), "utf8"), "written\n");
    assert.equal((await sh(id, "cat /ro/hello")).out, "from host\n");
    const refused = await sh(id, "echo x > /ro/new");
    assert.notEqual(refused.code, 0);
    assert.match(refused.err, /read-only/i);
    assert.ok(!existsSync(join(ro, "new")));
    assert.equal((await sh(id, "cat /linked/target")).out, "via symlink\n");
    assert.equal((await sh(id, "test -L /linked; echo $?")).out, "1\n", "the mount is the directory, not the link");
    await cleanupIds(id);
  });

  test("mount propagation: private, host-to-container, bidirectional", async () => {
    const pCfg = podConfig({ linux: { securityContext: { privileged: true } } });
    const pod = (await rt().runPodSandbox({ config: pCfg })).podSandboxId;
    const srcs: string[] = [];
    try {
      const dirs: Record<string, string> = {};
      for (const k of ["private", "slave", "shared"]) {
        dirs[k] = await mkdtemp(join(tmp, `prop-${k}-`));
        await mkdir(join(dirs[k]!, "sub"));
      }
      const id = await run({
        linux: { securityContext: { privileged: true } },
        mounts: [
          { containerPath: "/private", hostPath: dirs["private"], propagation: MountPropagation.PROPAGATION_PRIVATE },
          { containerPath: "/slave", hostPath: dirs["slave"], propagation: MountPropagation.PROPAGATION_HOST_TO_CONTAINER },
          { containerPath: "/shared", hostPath: dirs["shared"], propagation: MountPropagation.PROPAGATION_BIDIRECTIONAL },
        ],
      }, { pod, podCfg: pCfg });
      // Host-side mounts after start: a tmpfs with a marker under each volume.
      for (const k of ["private", "slave", "shared"]) {
        execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", `berth-prop-${k}`, join(dirs[k]!, "sub")]);
        srcs.push(join(dirs[k]!, "sub"));
        await writeFile(join(dirs[k]!, "sub", "marker"), k);
      }
      assert.equal((await sh(id, "cat /private/sub/marker")).code !== 0, true, "a private mount does not see host mounts");
      assert.equal((await sh(id, "cat /slave/sub/marker")).out, "slave", "rslave sees host mounts");
      assert.equal((await sh(id, "cat /shared/sub/marker")).out, "shared", "rshared sees host mounts");
      // Container-side mounts: only the bidirectional one reaches the host.
      for (const k of ["slave", "shared"]) {
        await mkdir(join(dirs[k]!, "inner"));
        const r = await sh(id, `mount -t tmpfs berth-in-${k} /${k}/inner && echo in > /${k}/inner/made`);
        assert.equal(r.code, 0, r.err);
        srcs.push(join(dirs[k]!, "inner"));
      }
      assert.equal(existsSync(join(dirs["shared"]!, "inner", "made")), true, "rshared: a mount made inside appears on the host");
      assert.equal(existsSync(join(dirs["slave"]!, "inner", "made")), false, "rslave: a mount made inside stays inside");
      await cleanupIds(id);
    } finally {
      for (const s of srcs.reverse()) spawnSync("umount", ["-l", s]);
      await rt().removePodSandbox({ podSandboxId: pod });
    }
  });

  test("users and groups: image user, run_as_user, run_as_username, run_as_group, supplemental groups", async () => {
    const idOf = async (over: Cfg) => {
      const id = await run(over);
      const r = await sh(id, "id -u; id -g; id -G; cat /proc/self/status | grep ^Groups");
      await rm(join(tmp, "x"), { force: true });
      await rt().removeContainer({ containerId: id });
      const [uid, gid, groups, statusGroups] = r.out.trim().split("\n");
      return { uid, gid, groups: groups!.split(" ").sort(), statusGroups: statusGroups!.replace(/^Groups:\s*/, "").trim().split(/\s+/).filter(Boolean).sort() };
    };
    const img = env.images!.user;
    const u = await idOf({ image: { image: img } });
    assert.equal(u.uid, "33");
    assert.equal(u.gid, "33");
    assert.deepEqual(u.statusGroups, ["33", "5000"], "www-data is in extra(5000) by /etc/group");
    const byUid = await idOf({ linux: { securityContext: { runAsUser: { value: 1000n } } } });
    assert.equal(byUid.uid, "1000");
    assert.equal(byUid.gid, "1000");
    assert.deepEqual(byUid.statusGroups, ["100", "1000", "5000"]);
    const byName = await idOf({ linux: { securityContext: { runAsUsername: "user1" } } });
    assert.equal(byName.uid, "1000");
    assert.deepEqual(byName.statusGroups, ["100", "1000", "5000"]);
    const withGroup = await idOf({ linux: { securityContext: { runAsUser: { value: 1000n }, runAsGroup: { value: 33n }, supplementalGroups: [7777n] } } });
    assert.equal(withGroup.uid, "1000");
    assert.equal(withGroup.gid, "33");
    assert.deepEqual(withGroup.statusGroups, ["100", "33", "5000", "7777"].sort());
    const strict = await idOf({ linux: { securityContext: { runAsUser: { value: 1000n }, supplementalGroups: [7777n], supplementalGroupsPolicy: SupplementalGroupsPolicy.Strict } } });
    assert.deepEqual(strict.statusGroups, ["1000", "7777"]);
    const unknownUid = await idOf({ linux: { securityContext: { runAsUser: { value: 4242n } } } });
    assert.equal(unknownUid.uid, "4242");
    assert.equal(unknownUid.gid, "0");
    // run_as_group without a user is refused.
    await assert.rejects(create({ linux: { securityContext: { runAsGroup: { value: 33n } } } }), (e) => codeOf(e) === grpc.status.INVALID_ARGUMENT && /run_as_group/.test((e as Error).message));
    // The status reports the user.
    const id = await create({ image: { image: img } });
    const st = await status(id);
    assert.equal(st.user?.linux?.uid, 33n);
    assert.equal(st.stopSignal !== 0, true);
    await rt().removeContainer({ containerId: id });
  });

  test("bad input is refused naming the problem and leaves nothing behind", async () => {
    const before = await leakSnapshot();
    const unknownPod = "e".repeat(64);
    await assert.rejects(create({}, { pod: unknownPod }), (e) => codeOf(e) === grpc.status.NOT_FOUND && (e as Error).message.includes(unknownPod));
    const missing = `${env.images!.registry.address}/berth-test/not-pulled:latest`;
    await assert.rejects(create({ image: { image: missing } }), (e) => codeOf(e) === grpc.status.NOT_FOUND && (e as Error).message.includes(missing));
    await assert.rejects(create({ mounts: [{ containerPath: "relative/path", hostPath: tmp }] }), (e) => codeOf(e) === grpc.status.INVALID_ARGUMENT && (e as Error).message.includes("relative/path"));
    await assert.rejects(create({ mounts: [{ containerPath: "/x", hostPath: join(tmp, "does-not-exist") }] }), (e) => codeOf(e) !== undefined && (e as Error).message.includes("does-not-exist"));
    // Refused while the spec is built (after the rootfs is mounted): rolled back.
    await assert.rejects(create({ mounts: [{ containerPath: "/rro", hostPath: tmp, recursiveReadOnly: true }] }), (e) => codeOf(e) === grpc.status.INVALID_ARGUMENT && /mount \/rro: recursive_read_only requires readonly/.test((e as Error).message));
    await assert.rejects(create({ mounts: [{ containerPath: "/rro", hostPath: tmp, readonly: true, recursiveReadOnly: true, propagation: MountPropagation.PROPAGATION_HOST_TO_CONTAINER }] }), (e) => codeOf(e) === grpc.status.INVALID_ARGUMENT && /\/rro/.test((e as Error).message));
    await assert.rejects(create({ mounts: [{ containerPath: "/x", hostPath: "relative-host" }] }), (e) => codeOf(e) === grpc.status.INVALID_ARGUMENT && (e as Error).message.includes("relative-host"));
    // A name with a NUL byte or a newline would reach the monitor's command line and the logs
    // (a NUL made the monitor's start throw, and berthd died of its timer 60 s later).
    for (const name of ["a\u0000b", "a\nb"]) {
      await assert.rejects(create({ metadata: { name, attempt: 0 } }), (e) => codeOf(e) === grpc.status.INVALID_ARGUMENT && /config\.metadata\.name .* must not contain control characters/.test((e as Error).message));
    }
    // The runtime's own error reaches the client.
    await assert.rejects(run({ command: ["/no/such/binary"] }), (e) => /no such file|not found/i.test((e as Error).message) && (e as Error).message.includes("/no/such/binary"));
    const after = await leakSnapshot();
    // A failed start leaves an exited record (kubelet removes it); nothing else.
    const leftover = (await rt().listContainers({})).containers.filter((c) => c.state === ContainerState.CONTAINER_EXITED);
    for (const c of leftover) await rt().removeContainer({ containerId: c.id });
    assert.deepEqual(await leakSnapshot(), before, `after the failures: ${JSON.stringify(after)}`);
  });

  test("a command not on PATH: the runtime's message reaches the client and nothing is left", async () => {
    const before = await leakSnapshot();
    await assert.rejects(create({ command: ["no-such-command-anywhere"] }), (e) => {
      assert.match((e as Error).message, /executable file not found/);
      assert.ok((e as Error).message.includes("no-such-command-anywhere"));
      return true;
    });
    assert.deepEqual(await leakSnapshot(), before);
  });

  test("a create retried after the client's deadline gets the same container", async () => {
    const req = { podSandboxId: podId, sandboxConfig: podCfg as never, config: { metadata: { name: `retry${++n}` }, image: { image: env.images!.busybox }, command: ["sleep", "1000"] } };
    await assert.rejects(rt().createContainer(req, { timeoutMs: 5 }), (e) => codeOf(e) === grpc.status.DEADLINE_EXCEEDED);
    const { containerId } = await rt().createContainer(req);
    const same = (await rt().listContainers({})).containers.filter((c) => c.metadata?.name === req.config.metadata.name);
    assert.deepEqual(same.map((c) => c.id), [containerId], "one container, handed to the retry");
    // A different request under the same name is still refused.
    await assert.rejects(rt().createContainer({ ...req, config: { ...req.config, command: ["true"] } }), (e) => codeOf(e) === grpc.status.ALREADY_EXISTS && (e as Error).message.includes(containerId));
    await rt().removeContainer({ containerId });
  });

  test("the pod's hostname, hosts and resolv.conf; a read-only rootfs; a file volume", async () => {
    const pCfg = podConfig({ hostname: "ctr-host", dnsConfig: { servers: ["10.9.8.7"], searches: ["x.local"], options: [] } });
    const pod = (await rt().runPodSandbox({ config: pCfg })).podSandboxId;
    try {
      const file = join(tmp, `file-vol-${n}`);
      await writeFile(file, "a file\n");
      const id = await run({
        linux: { securityContext: { readonlyRootfs: true } },
        mounts: [{ containerPath: "/etc/app.conf", hostPath: file, readonly: true }],
      }, { pod, podCfg: pCfg });
      const r = await sh(id, "hostname; echo $HOSTNAME; grep -c ctr-host /etc/hosts; grep nameserver /etc/resolv.conf; cat /etc/app.conf");
      assert.equal(r.out, "ctr-host\nctr-host\n1\nnameserver 10.9.8.7\na file\n");
      const w = await sh(id, "touch /newfile");
      assert.notEqual(w.code, 0);
      assert.match(w.err, /read-only/i);
      await cleanupIds(id);
    } finally {
      await rt().removePodSandbox({ podSandboxId: pod });
    }
  });

  test("UpdateContainerResources changes the limits the container sees and its status", async () => {
    const mem = (x: bigint) => x * 1024n * 1024n;
    const id = await run({ linux: { resources: { memoryLimitInBytes: mem(64n), cpuShares: 512n, cpuPeriod: 100000n, cpuQuota: 50000n } } });
    // Memory limit and CFS quota as the container reads them from its own cgroup (v1 or v2).
    const v2 = existsSync("/sys/fs/cgroup/cgroup.controllers");
    const script = v2 ? "cat /sys/fs/cgroup/memory.max; cut -d' ' -f1 /sys/fs/cgroup/cpu.max" : "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.shares";
    const limits = async () => (await sh(id, script)).out.trim().split("\n");
    assert.deepEqual(await limits(), [String(mem(64n)), "50000", ...(v2 ? [] : ["512"])]);
    await rt().updateContainerResources({ containerId: id, linux: { memoryLimitInBytes: mem(128n), cpuShares: 1024n, cpuPeriod: 100000n, cpuQuota: 20000n } });
    assert.deepEqual(await limits(), [String(mem(128n)), "20000", ...(v2 ? [] : ["1024"])]);
    const st = await status(id);
    assert.equal(st.resources?.linux?.memoryLimitInBytes, mem(128n));
    assert.equal(st.resources?.linux?.cpuQuota, 20000n);
    await rt().stopContainer({ containerId: id, timeout: 0n });
    await assert.rejects(rt().updateContainerResources({ containerId: id, linux: { memoryLimitInBytes: mem(32n) } }), (e) => codeOf(e) === grpc.status.FAILED_PRECONDITION);
    await cleanupIds(id);
  });

  test("containers of a stopped pod: start and create refused; removing the pod removes them", async () => {
    const pCfg = podConfig();
    const pod = (await rt().runPodSandbox({ config: pCfg })).podSandboxId;
    const running = await run({}, { pod, podCfg: pCfg });
    const created = await create({}, { pod, podCfg: pCfg });
    const pid = JSON.parse((await rt().containerStatus({ containerId: running, verbose: true })).info["info"]!).pid as number;
    await rt().stopPodSandbox({ podSandboxId: pod });
    assert.equal((await status(running)).state, ContainerState.CONTAINER_EXITED, "stopping the pod stops its containers");
    assert.ok(!existsSync(`/proc/${pid}`) || (await readFile(`/proc/${pid}/stat`, "utf8")).includes(") Z"));
    await assert.rejects(rt().startContainer({ containerId: created }), (e) => codeOf(e) === grpc.status.FAILED_PRECONDITION);
    await assert.rejects(create({}, { pod, podCfg: pCfg }), (e) => codeOf(e) === grpc.status.FAILED_PRECONDITION && (e as Error).message.includes(pod));
    await rt().removePodSandbox({ podSandboxId: pod });
    for (const id of [running, created]) await assert.rejects(status(id), (e) => codeOf(e) === grpc.status.NOT_FOUND);
  });

  test("GetContainerEvents: created, started, stopped (also on a natural exit), deleted, with statuses", async () => {
    const stream = rt().getContainerEvents({});
    const events: { id: string; type: number; state?: number }[] = [];
    const reader = (async () => {
      try {
        for await (const ev of stream.messages) {
          events.push({ id: ev.containerId, type: ev.containerEventType, state: ev.containersStatuses.find((x) => x.id === ev.containerId)?.state });
        }
      } catch { /* cancelled */ }
    })();
    await new Promise((r) => setTimeout(r, 200)); // the subscription is in place
    const quick = await run({ command: ["sh", "-c", "exit 0"] });
    await waitExited(quick);
    const stopped = await run();
    await rt().stopContainer({ containerId: stopped, timeout: 0n });
    const never = await create();
    await rt().stopContainer({ containerId: never, timeout: 0n });
    assert.equal((await status(never)).state, ContainerState.CONTAINER_EXITED, "a created container can be stopped");
    await cleanupIds(quick, stopped, never);
    const end = Date.now() + 10_000;
    while (events.filter((e) => e.type === ContainerEventType.CONTAINER_DELETED_EVENT).length < 3 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    stream.cancel();
    await reader;
    const of = (id: string) => events.filter((e) => e.id === id).map((e) => e.type);
    const T = ContainerEventType;
    assert.deepEqual(of(quick), [T.CONTAINER_CREATED_EVENT, T.CONTAINER_STARTED_EVENT, T.CONTAINER_STOPPED_EVENT, T.CONTAINER_DELETED_EVENT]);
    assert.deepEqual(of(stopped), [T.CONTAINER_CREATED_EVENT, T.CONTAINER_STARTED_EVENT, T.CONTAINER_STOPPED_EVENT, T.CONTAINER_DELETED_EVENT]);
    assert.deepEqual(of(never), [T.CONTAINER_CREATED_EVENT, T.CONTAINER_STOPPED_EVENT, T.CONTAINER_DELETED_EVENT]);
    const stoppedEv = events.find((e) => e.id === stopped && e.type === T.CONTAINER_STOPPED_EVENT)!;
    assert.equal(stoppedEv.state, ContainerState.CONTAINER_EXITED, "the event carries the container's new status");
  });

  test("parallel creates, starts, stops and removes in one pod", async () => {
    const ids = await Promise.all(Array.from({ length: 6 }, () => create()));
    assert.equal(new Set(ids).size, 6);
    await Promise.all(ids.map((id) => rt().startContainer({ containerId: id })));
    const states = await Promise.all(ids.map(async (id) => (await status(id)).state));
    assert.deepEqual(states, ids.map(() => ContainerState.CONTAINER_RUNNING));
    await Promise.all(ids.map((id) => rt().stopContainer({ containerId: id, timeout: 0n })));
    await Promise.all([...ids, ...ids].map((id) => rt().removeContainer({ containerId: id })));
    const left = (await rt().listContainers({})).containers.filter((c) => ids.includes(c.id));
    assert.deepEqual(left, []);
  });

  test("a tty container logs its terminal output; a stdin container keeps running on an open stdin", async () => {
    const logDir = await mkdtemp(join(tmp, "tty-logs-"));
    const pCfg = podConfig({ logDirectory: logDir });
    const pod = (await rt().runPodSandbox({ config: pCfg })).podSandboxId;
    try {
      const tty = await run({ tty: true, command: ["sh", "-c", "tty; echo on-terminal; sleep 1000"], logPath: "tty.log" }, { pod, podCfg: pCfg });
      const stdin = await run({ stdin: true, command: ["cat"], logPath: "stdin.log" }, { pod, podCfg: pCfg });
      let log = "";
      for (let i = 0; i < 100 && !log.includes("on-terminal"); i++) {
        await new Promise((r) => setTimeout(r, 100));
        log = await readFile(join(logDir, "tty.log"), "utf8").catch(() => "");
      }
      assert.match(log, /stdout [PF] \/dev\/pts\/\d+\r?$/m);
      assert.match(log, /stdout [PF] on-terminal\r?$/m);
      assert.equal((await sh(tty, "test -t 0 && echo no-tty-for-exec || echo plain")).out, "plain\n", "ExecSync has no terminal");
      assert.equal((await status(stdin)).state, ContainerState.CONTAINER_RUNNING, "cat waits on the open stdin");
      await cleanupIds(tty, stdin);
    } finally {
      await rt().removePodSandbox({ podSandboxId: pod });
    }
  });

  test("kubelet's form of the image: the ref from PullImage, with user_specified_image; an older kubelet without it", async () => {
    const { imageRef } = await env.b.client.image.pullImage({ image: { image: env.images!.user } });
    const id = await run({ image: { image: imageRef, userSpecifiedImage: env.images!.user } });
    assert.equal((await sh(id, "id -u")).out, "33\n", "the image's config applies");
    const st = await status(id);
    assert.equal(st.image?.userSpecifiedImage, env.images!.user);
    assert.equal(st.imageRef.length > 0, true);
    const old = await create({ image: { image: imageRef } });
    assert.equal((await status(old)).image?.userSpecifiedImage, imageRef);
    await cleanupIds(id, old);
  });

  test("a second container with the same name is ALREADY_EXISTS naming the first", async () => {
    const cfg = { metadata: { name: "dup", attempt: 0 } };
    const first = await create(cfg);
    await assert.rejects(create({ ...cfg, labels: { other: "x" } }), (e) => codeOf(e) === grpc.status.ALREADY_EXISTS && (e as Error).message.includes(first));
    await rt().removeContainer({ containerId: first });
    const again = await create(cfg);
    assert.notEqual(again, first, "the name is free again after remove");
    await rt().removeContainer({ containerId: again });
  });
});
