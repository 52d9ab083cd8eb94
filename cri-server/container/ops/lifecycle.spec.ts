// Unit specs of the container lifecycle operations with fakes for the OS, the OCI runtime, conmon,
// cgroups, berth's mounts, the image service, the spec builder and the pod. The rollback spec
// (after containerd's sandbox_run_rollback_test) makes each step of CreateContainer fail in turn
// and checks that everything acquired was released.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { CreateContainerRequestSchema, LinuxContainerResourcesSchema, PodSandboxConfigSchema, PodSandboxState, type CreateContainerRequest } from "../../../proto/gen/runtime/v1/api_pb.js";
import { defaultConfig } from "../../config.ts";
import { CreateCache } from "../../create-cache.ts";
import { BerthError, Code } from "../../../oci-runtime/foundation/errdefs.ts";
import type { Logger } from "../../../oci-runtime/foundation/log.ts";
import type { ExitInfo, OciRuntime } from "../../../oci-runtime/index.ts";
import { Store } from "../../stores/store.ts";
import { ContainerEventType } from "../../events/index.ts";
import type { SandboxRecord } from "../../sandbox/sandbox-record.ts";
import type { ContainerRecord } from "../container-record.ts";
import type { ContainerDeps } from "../deps.ts";
import { createContainer } from "./create.ts";
import { startContainer } from "./start.ts";
import { stopContainer } from "./stop.ts";
import { removeContainer } from "./remove.ts";
import { recoverContainers } from "./recover.ts";
import { refreshContainer } from "./exit.ts";
import { reopenContainerLog, REOPEN_WAIT_MS } from "./reopen-log.ts";
import { updateContainerResources } from "./update-resources.ts";
import { execSyncInContainer } from "./exec-sync.ts";

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet, enabled: () => false };

/** The steps of CreateContainer a fake can fail at, in the order they run. */
const STEPS = ["record", "bundle", "rootfs", "image volumes", "spec", "prepared mounts", "write bundle", "conmon", "bundle synced", "release bind clones", "created record"] as const;
type Step = (typeof STEPS)[number];

class Injected extends Error {}

const SANDBOX_ID = "5".repeat(64);

async function fakes(failAtStep?: Step) {
  let failAt = failAtStep;
  const dir = await mkdtemp(join(tmpdir(), "container-ops-"));
  const held = new Set<string>();
  const events: string[] = [];
  const signals: string[] = [];
  const exits = new Map<string, ExitInfo>();
  const fail = (step: Step) => { if (step === failAt) throw new Injected(`injected failure at ${step}`); };
  const config = defaultConfig();
  config.root = join(dir, "root");
  config.state = join(dir, "state");
  class FakeStore extends Store<ContainerRecord> {
    override async add(rec: ContainerRecord) { fail("record"); return super.add(rec); }
    override async update(id: string, fn: (r: ContainerRecord) => void) {
      let created = false;
      const out = await super.update(id, (r) => { const was = r.state; fn(r); created = was === "creating" && r.state === "created"; });
      if (created && failAt === "created record") {
        await super.update(id, (r) => { r.state = "creating"; });
        fail("created record");
      }
      return out;
    }
  }
  const store = new FakeStore("container", join(config.root, "containers"));
  const procs = new Map<number, string>(); // live pids -> what
  let nextPid = 100;
  let n = 0;
  const runtimeStates = new Map<string, "created" | "running" | "stopped">();
  const runtime = {
    name: "runc",
    start: async (id: string) => { runtimeStates.set(id, "running"); },
    kill: async (id: string, sig: string) => {
      signals.push(`${id.slice(0, 2)} ${sig}`);
      if (sig === "SIGKILL" || sig === "SIGTERM") {
        runtimeStates.set(id, "stopped");
        exits.set(id, { exitCode: sig === "SIGKILL" ? 137 : 143, finishedAt: new Date(), finishedAtNs: 2_000_000_000n });
      }
    },
    delete: async (id: string) => { runtimeStates.delete(id); held.delete(`runtime:${id}`); },
    state: async (id: string) => ({ status: runtimeStates.get(id) ?? "stopped" }),
    update: async () => {},
    features: async () => ({ mountOptions: [] }),
  } as unknown as OciRuntime;
  const sandbox: SandboxRecord = {
    id: SANDBOX_ID, name: "web_default_u1_0", state: "ready", metadata: { name: "web", uid: "u1", namespace: "default", attempt: 0 },
    createdAt: "1", labels: {}, annotations: {}, runtimeHandler: "runc",
    config: { pb: Buffer.from(create(PodSandboxConfigSchema, {}).toString()).toString("base64") },
    namespaces: { network: 0, pid: 0, ipc: 0, targetId: "" }, netnsPath: "/netns/x", ips: [], podDir: "/pod", shmPath: "", cgroupParent: "",
    infra: { pid: 1, bundle: "/pod/bundle", cgroupsPath: "" },
  };
  let podReady = true;
  const d: ContainerDeps = {
    config, log: quiet, store, creates: new CreateCache(60_000),
    exitDir: join(config.state, "exits"), socketDir: join(config.state, "sockets"),
    os: {
      now: () => 1_000_000_000n,
      newId: () => `${String(++n).padStart(2, "0")}${"c".repeat(62)}`,
      kill: (pid) => { if (!procs.has(pid)) throw new Error("ESRCH"); held.delete(procs.get(pid)!); procs.delete(pid); },
      mkdirPrivate: async (p) => { fail(p.endsWith("rootfs") ? "rootfs" : "bundle"); if (!p.endsWith("rootfs")) held.add(`dir:${p}`); },
      mkdirShared: async () => {},
      removeAll: async (p) => { held.delete(`dir:${p}`); },
      readFile: async () => "{}",
      writeBundle: async () => { fail("write bundle"); },
      stageBundle: async () => {
        fail("write bundle");
        // Durability settles while conmon runs (a failure there comes after conmon started).
        const synced = new Promise<void>((resolve) => setTimeout(resolve, 5)).then(() => fail("bundle synced"));
        synced.catch(() => {});
        return { synced };
      },
      inode: async () => undefined,
    },
    runtimes: { get: () => runtime },
    monitor: {
      create: async (o) => {
        fail("conmon");
        const conmonPid = nextPid++;
        procs.set(conmonPid, `conmon:${o.id}`);
        held.add(`conmon:${o.id}`); held.add(`runtime:${o.id}`); held.add(`cgroup:/berth/berth-${o.id}`);
        runtimeStates.set(o.id, "created");
        return { pid: nextPid++, conmonPid };
      },
      pidOf: async () => undefined,
      alive: async (pid) => procs.has(pid),
      readExit: async (id) => exits.get(id),
      oomKilled: async () => false,
      recover: async (rec) => {
        const exit = exits.get(rec.id);
        if (exit) return { status: "exited", ...exit, oomKilled: false };
        return procs.has(rec.conmonPid) ? { status: "running", pid: rec.pid, conmonPid: rec.conmonPid } : { status: "lost", pid: rec.pid };
      },
      reopenLog: async () => {},
    },
    cgroups: {
      isV2: async () => true,
      remove: async (p) => { held.delete(`cgroup:${p}`); return []; },
      conmonPath: () => "",
      perContainerConmonPath: () => undefined,
      warmAttach: () => {},
      layout: async () => ({ mode: "v2" }) as never,
    },
    mounts: {
      prepare: async (i) => { fail("prepared mounts"); held.add(`prepared:${i.containerId}`); held.add(`clones:${i.containerId}`); return `/prepared/${i.containerId}`; },
      releaseBindClones: async (dir) => { fail("release bind clones"); held.delete(`clones:${dir.split("/").pop()}`); },
      release: async (id) => { held.delete(`prepared:${id}`); held.delete(`clones:${id}`); },
      releaseImageVolumes: async () => {},
      mountImageVolumes: async (id, _b, cfg) => { fail("image volumes"); held.add(`volumes:${id}`); return { cfg, mounts: [] }; },
    },
    images: {
      get: (ref: string) => (ref === "busybox" ? { id: "sha256:img", repoDigests: ["busybox@sha256:abc"], config: {}, chainIds: [] } : undefined),
      createRootfs: async (key: string) => { held.add(`rootfs:${key}`); },
      removeRootfs: async (key: string) => { held.delete(`rootfs:${key}`); },
      removeImageVolumes: async (owner: string) => { held.delete(`volumes:${owner}`); },
      upperDir: (key: string) => `/snapshots/containers/${key}/fs`,
    } as unknown as ContainerDeps["images"],
    specs: {
      check: async () => ({}) as never,
      build: async () => { fail("spec"); return { spec: { mounts: [] } as never, user: { uid: 0, gid: 0, additionalGids: [] } as never }; },
    },
    sandboxes: {
      get: (id) => { if (id !== SANDBOX_ID) throw new BerthError(Code.NOT_FOUND, `pod sandbox ${id} not found`); return sandbox; },
      liveState: async () => (podReady ? PodSandboxState.SANDBOX_READY : PodSandboxState.SANDBOX_NOTREADY),
      podConfig: () => create(PodSandboxConfigSchema, {}),
      store: { tryGet: (id) => (id === SANDBOX_ID ? sandbox : undefined) },
    },
    events: { publish: (rec, type) => { events.push(`${type}:${rec.id.slice(0, 2)}`); } },
    exits: { forget: () => {} },
    mountFeatures: new Map(),
  };
  return {
    d, held, events, signals, exits, store, runtimeStates,
    heal: () => { failAt = undefined; },
    setPodReady: (v: boolean) => { podReady = v; },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

function request(name = "app"): CreateContainerRequest {
  return create(CreateContainerRequestSchema, { podSandboxId: SANDBOX_ID, config: { metadata: { name }, image: { image: "busybox" } } });
}

test("CreateContainer acquires rootfs, bundle, conmon, runtime state and cgroup and records it created", async () => {
  const f = await fakes();
  try {
    const id = await createContainer(f.d, request());
    const rec = f.store.get(id);
    assert.equal(rec.state, "created");
    assert.ok(rec.conmonPid > 0 && rec.pid > 0);
    assert.equal(rec.cgroupsPath, `/berth/berth-${id}`);
    assert.deepEqual([...f.held].map((h) => h.split(":")[0]).sort(), ["cgroup", "conmon", "dir", "prepared", "rootfs", "runtime", "volumes"]);
    assert.deepEqual(f.events, [`${ContainerEventType.CONTAINER_CREATED_EVENT}:${id.slice(0, 2)}`]);
  } finally { await f.cleanup(); }
});

for (const step of STEPS) {
  test(`rollback: a failure at "${step}" releases everything acquired`, async () => {
    const f = await fakes(step);
    try {
      await assert.rejects(createContainer(f.d, request()), (e: Error) => e instanceof Injected && e.message.includes(step));
      assert.deepEqual([...f.held], [], "every acquired resource is released");
      assert.deepEqual(f.store.list(), [], "no record is left");
      assert.deepEqual(f.events, [], "no event for a container that never was");
      f.heal();
      const id = await createContainer(f.d, request());
      assert.equal(f.store.get(id).state, "created", "the name is free again");
    } finally { await f.cleanup(); }
  });
}

test("bad input is refused before anything is acquired", async () => {
  const f = await fakes();
  try {
    const noImage = request();
    noImage.config!.image!.image = "nope";
    await assert.rejects(createContainer(f.d, noImage), (e: unknown) => e instanceof BerthError && e.code === Code.NOT_FOUND && /image "nope" not found/.test(e.message));
    const rel = create(CreateContainerRequestSchema, { podSandboxId: SANDBOX_ID, config: { metadata: { name: "app" }, image: { image: "busybox" }, mounts: [{ containerPath: "data", hostPath: "/x" }] } });
    await assert.rejects(createContainer(f.d, rel), /mount container_path "data" must be absolute/);
    f.setPodReady(false);
    await assert.rejects(createContainer(f.d, request()), (e: unknown) => e instanceof BerthError && e.code === Code.FAILED_PRECONDITION && /is not ready/.test(e.message));
    assert.deepEqual([...f.held], []);
    assert.deepEqual(f.store.list(), []);
  } finally { await f.cleanup(); }
});

test("a retry of the same CreateContainer joins the create in progress", async () => {
  const f = await fakes();
  try {
    const [a, b] = await Promise.all([createContainer(f.d, request()), createContainer(f.d, request())]);
    assert.equal(a, b);
    assert.equal(f.store.list().length, 1);
    const other = request();
    other.config!.image!.userSpecifiedImage = "different";
    await assert.rejects(createContainer(f.d, other), (e: unknown) => e instanceof BerthError && e.code === Code.ALREADY_EXISTS);
  } finally { await f.cleanup(); }
});

test("StartContainer: only a created container in a ready pod starts; a second start is refused", async () => {
  const f = await fakes();
  try {
    const id = await createContainer(f.d, request());
    f.setPodReady(false);
    await assert.rejects(startContainer(f.d, id), /pod sandbox .* is not ready/);
    assert.equal(f.store.get(id).state, "created");
    f.setPodReady(true);
    await startContainer(f.d, id);
    assert.equal(f.store.get(id).state, "running");
    await assert.rejects(startContainer(f.d, id), (e: unknown) => e instanceof BerthError && e.code === Code.FAILED_PRECONDITION && /already running/.test(e.message));
  } finally { await f.cleanup(); }
});

test("a runtime error at start records the container exited with StartError", async () => {
  const f = await fakes();
  try {
    const id = await createContainer(f.d, request());
    (f.d.runtimes.get("runc") as { start: unknown }).start = async () => { throw new Error("exec: no such file"); };
    await assert.rejects(startContainer(f.d, id), /no such file/);
    const rec = f.store.get(id);
    assert.deepEqual([rec.state, rec.reason, rec.exitCode], ["exited", "StartError", 128]);
  } finally { await f.cleanup(); }
});

test("StopContainer sends the stop signal, then records conmon's exit; unknown ids and second stops succeed", async () => {
  const f = await fakes();
  try {
    const id = await createContainer(f.d, request());
    await startContainer(f.d, id);
    await stopContainer(f.d, id, 5);
    const rec = f.store.get(id);
    assert.deepEqual([rec.state, rec.exitCode, rec.reason], ["exited", 143, "Error"]);
    assert.deepEqual(f.signals, [`${id.slice(0, 2)} SIGTERM`]);
    await stopContainer(f.d, id, 5);
    await stopContainer(f.d, "f".repeat(64), 5);
    assert.equal(f.signals.length, 1);
  } finally { await f.cleanup(); }
});

test("StopContainer with timeout 0 kills at once; a container the runtime lost is recorded exited 137", async () => {
  const f = await fakes();
  try {
    const id = await createContainer(f.d, request());
    await startContainer(f.d, id);
    (f.d.runtimes.get("runc") as { kill: unknown }).kill = async (cid: string, sig: string) => { f.signals.push(`${cid.slice(0, 2)} ${sig}`); f.runtimeStates.set(cid, "stopped"); };
    const { KILL_WAIT_MS } = await import("./stop.ts");
    assert.equal(KILL_WAIT_MS, 10_000);
    // No exit file ever appears: after the (bounded) wait, the runtime's "stopped" decides.
    f.d.monitor.readExit = async () => undefined;
    const t0 = Date.now();
    await stopContainer(f.d, id, 0);
    assert.ok(Date.now() - t0 >= KILL_WAIT_MS - 100, "waited for the exit file up to its bound");
    assert.deepEqual(f.signals, [`${id.slice(0, 2)} SIGKILL`]);
    assert.deepEqual([f.store.get(id).state, f.store.get(id).exitCode], ["exited", 137]);
  } finally { await f.cleanup(); }
});

test("RemoveContainer kills, tears everything down, forgets the name and sends the deleted event", async () => {
  const f = await fakes();
  try {
    const id = await createContainer(f.d, request());
    await startContainer(f.d, id);
    await removeContainer(f.d, id);
    assert.deepEqual([...f.held], []);
    assert.deepEqual(f.store.list(), []);
    assert.equal(f.events.at(-1), `${ContainerEventType.CONTAINER_DELETED_EVENT}:${id.slice(0, 2)}`, "the deleted event comes last");
    await removeContainer(f.d, id); // again: succeeds
    assert.notEqual(await createContainer(f.d, request()), id);
  } finally { await f.cleanup(); }
});

test("recovery: an interrupted create is torn down; an exit while down is recorded; a lost monitor is killed", async () => {
  const f = await fakes();
  try {
    const exited = await createContainer(f.d, request("a"));
    const lost = await createContainer(f.d, request("b"));
    const running = await createContainer(f.d, request("c"));
    const half = await createContainer(f.d, request("d"));
    for (const id of [exited, lost, running]) await startContainer(f.d, id);
    await f.store.update(half, (r) => { r.state = "creating"; });
    f.exits.set(exited, { exitCode: 3, finishedAt: new Date(), finishedAtNs: 3_000_000_000n });
    f.d.os.kill(f.store.get(lost).conmonPid, "SIGKILL");
    f.d.store = new Store<ContainerRecord>("container", join(f.d.config.root, "containers"));
    await recoverContainers(f.d);
    assert.deepEqual([f.d.store.get(exited).state, f.d.store.get(exited).exitCode, f.d.store.get(exited).reason], ["exited", 3, "Error"]);
    assert.deepEqual([f.d.store.get(lost).state, f.d.store.get(lost).exitCode], ["exited", 137]);
    assert.match(f.d.store.get(lost).message, /conmon\) exited while berthd was down/);
    assert.equal(f.d.store.get(running).state, "running");
    assert.equal(f.d.store.tryGet(half), undefined);
    assert.deepEqual([...f.held].filter((h) => h.includes(half)), []);
    assert.equal((await refreshContainer(f.d, running)).state, "running");
  } finally { await f.cleanup(); }
});

test("ReopenContainerLog answers once conmon made a new log file; a gone monitor is FAILED_PRECONDITION; only a running container", async () => {
  const f = await fakes();
  try {
    const id = await createContainer(f.d, request());
    await assert.rejects(reopenContainerLog(f.d, id), (e: unknown) => e instanceof BerthError && e.code === Code.FAILED_PRECONDITION && /is not running/.test(e.message));
    await startContainer(f.d, id);
    let inode = 1;
    let reopened = 0;
    f.d.os.inode = async () => inode;
    f.d.monitor.reopenLog = async () => { reopened++; setTimeout(() => { inode = 2; }, 30); };
    await reopenContainerLog(f.d, id);
    assert.equal(reopened, 1);
    // conmon dies before it reopens: the wait ends at once with a clear error, not at its bound.
    f.d.monitor.reopenLog = async () => {};
    f.d.os.kill(f.store.get(id).conmonPid, "SIGKILL");
    const t0 = Date.now();
    await assert.rejects(reopenContainerLog(f.d, id), /has no running monitor/);
    assert.ok(Date.now() - t0 < REOPEN_WAIT_MS / 2);
  } finally { await f.cleanup(); }
});

test("UpdateContainerResources applies, records and writes the new limits to the bundle; an exited container is refused", async () => {
  const f = await fakes();
  try {
    const id = await createContainer(f.d, request());
    const applied: unknown[] = [];
    const written: unknown[] = [];
    (f.d.runtimes.get("runc") as { update: unknown }).update = async (_id: string, r: unknown) => { applied.push(r); };
    f.d.os.writeBundle = async (_b, spec) => { written.push(spec); };
    await updateContainerResources(f.d, id, create(LinuxContainerResourcesSchema, { memoryLimitInBytes: 64n << 20n }));
    assert.equal(applied.length, 1);
    assert.ok(f.store.get(id).resources, "recorded");
    assert.match(JSON.stringify(written[0]), /"limit":67108864/);
    await startContainer(f.d, id);
    await stopContainer(f.d, id, 0);
    await assert.rejects(updateContainerResources(f.d, id, create(LinuxContainerResourcesSchema, { cpuShares: 2n })), (e: unknown) => e instanceof BerthError && e.code === Code.FAILED_PRECONDITION && /has exited/.test(e.message));
    assert.equal(applied.length, 1, "nothing applied to an exited container");
  } finally { await f.cleanup(); }
});

test("ExecSync refuses a container that is not running and an empty command", async () => {
  const f = await fakes();
  try {
    const id = await createContainer(f.d, request());
    await assert.rejects(execSyncInContainer(f.d, id, ["true"], 1), (e: unknown) => e instanceof BerthError && e.code === Code.FAILED_PRECONDITION && /not running \(state created\)/.test(e.message));
    await startContainer(f.d, id);
    await assert.rejects(execSyncInContainer(f.d, id, [], 1), (e: unknown) => e instanceof BerthError && e.code === Code.INVALID_ARGUMENT && /cmd must not be empty/.test(e.message));
  } finally { await f.cleanup(); }
});
