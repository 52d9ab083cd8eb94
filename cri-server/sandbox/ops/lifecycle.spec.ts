// Unit specs of the sandbox lifecycle operations with fakes for the OS, CNI, the infra runtime and
// the pod's containers. The rollback spec (after containerd's sandbox_run_rollback_test) makes
// each step of RunPodSandbox fail in turn and checks that everything acquired was released.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { NamespaceMode, RunPodSandboxRequestSchema, type RunPodSandboxRequest } from "../../../proto/gen/runtime/v1/api_pb.js";
import { defaultConfig } from "../../config.ts";
import { CreateCache } from "../../create-cache.ts";
import { BerthError, Code } from "../../../oci-runtime/foundation/errdefs.ts";
import type { Logger } from "../../../oci-runtime/foundation/log.ts";
import type { MountFeatures } from "../../../oci-runtime/mounts/features.ts";
import { Store } from "../../stores/store.ts";
import type { SandboxRecord } from "../sandbox-record.ts";
import type { SandboxDeps } from "../deps.ts";
import { runSandbox } from "./run.ts";
import { stopSandbox } from "./stop.ts";
import { removeSandbox } from "./remove.ts";
import { recoverSandboxes } from "./recover.ts";

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet, enabled: () => false };

/** The steps of RunPodSandbox a fake can fail at, in the order they run. */
const STEPS = ["record", "pod directory", "shm", "netns", "user namespace", "cni", "infra", "pins", "pod files", "ready record"] as const;
type Step = (typeof STEPS)[number];

class Injected extends Error {}

/** Fakes whose resources are a set of names: acquire adds, release deletes (idempotent, as the real ones). */
async function fakes(failAtStep?: Step, opts: { together?: boolean } = {}) {
  let failAt = failAtStep;
  const dir = await mkdtemp(join(tmpdir(), "sandbox-ops-"));
  const held = new Set<string>();
  const calls: string[] = [];
  const fail = (step: Step) => { if (step === failAt) throw new Injected(`injected failure at ${step}`); };
  const config = defaultConfig();
  config.root = join(dir, "root");
  config.state = join(dir, "state");
  class FakeStore extends Store<SandboxRecord> {
    override async add(rec: SandboxRecord) { fail("record"); return super.add(rec); }
    override async update(id: string, fn: (r: SandboxRecord) => void) {
      let ready = false;
      const out = await super.update(id, (r) => { fn(r); ready = r.state === "ready"; });
      if (ready && failAt === "ready record") {
        // The write failed: put the record back as it was on disk before.
        await super.update(id, (r) => { r.state = "creating"; });
        fail("ready record");
      }
      return out;
    }
  }
  const store = new FakeStore("sandbox", join(config.root, "sandboxes"));
  let n = 0;
  const features: MountFeatures = { recursiveReadOnly: "none", userNamespaces: true, reasons: [] } as unknown as MountFeatures;
  const d: SandboxDeps = {
    config, log: quiet, store, creates: new CreateCache(60_000),
    os: {
      now: () => 1_000_000_000n,
      newId: () => `${String(++n).padStart(2, "0")}${"a".repeat(62)}`,
      hostname: () => "host",
      mkdirPrivate: async (p) => { fail("pod directory"); held.add(`dir:${p}`); },
      removeAll: async (p) => { for (const h of held) if (h === `dir:${p}`) held.delete(h); },
      readdir: async () => [...held].filter((h) => h.startsWith("dir:")).map((h) => h.slice(h.lastIndexOf("/") + 1)),
      mountShm: async (p) => { fail("shm"); held.add(`shm:${p}`); },
      unmountShm: async (p) => { held.delete(`shm:${p}`); },
      writePodFiles: async () => { fail("pod files"); },
      createNetns: async (name) => { fail("netns"); held.add(`netns:/netns/${name}`); return `/netns/${name}`; },
      removeNetns: async (p) => { held.delete(`netns:${p}`); },
      listNetns: async () => [...held].filter((h) => h.startsWith("netns:")).map((h) => h.slice(6)),
      createUserns: async (id, _u, withNetns) => {
        fail("user namespace");
        held.add(`userns:${id}`);
        if (withNetns) held.add(`netns:/userns/${id}/netns`);
        return { usernsPath: `/userns/${id}/userns`, netnsPath: withNetns ? `/userns/${id}/netns` : "" };
      },
      removeUserns: async (id) => { held.delete(`userns:${id}`); held.delete(`netns:/userns/${id}/netns`); },
      listUserns: async () => [...held].filter((h) => h.startsWith("userns:")).map((h) => h.slice(7)),
      // A failed pin undoes itself (as berth-mount pin-ns and pinPodNamespaces do).
      pinNamespaces: async (p) => { fail("pins"); for (const x of [p.ipcPath, p.utsPath]) if (x) held.add(`pin:${x}`); },
      unpinNamespaces: async (paths) => { for (const x of paths) held.delete(`pin:${x}`); },
      // One helper call for shm, netns and pins (the real one): it undoes itself on failure.
      ...(opts.together ? {
        createPodNamespaces: async (p: { shmPath: string; netnsName: string; pins?: { ipcPath: string; utsPath: string } }) => {
          if (p.shmPath) fail("shm");
          if (p.netnsName) fail("netns");
          if (p.pins) fail("pins");
          if (p.shmPath) held.add(`shm:${p.shmPath}`);
          if (p.netnsName) held.add(`netns:/netns/${p.netnsName}`);
          for (const x of [p.pins?.ipcPath, p.pins?.utsPath]) if (x) held.add(`pin:${x}`);
          return { netnsPath: p.netnsName ? `/netns/${p.netnsName}` : "" };
        },
      } : {}),
      pinsAlive: async (paths) => paths.every((x) => !x || held.has(`pin:${x}`)),
    },
    network: {
      // As the real one: the ADD waits for `ready` (the record, shm and netns) and runs nothing if it rejects.
      setUp: async (req) => { if (req.ready) await req.ready; fail("cni"); held.add(`cni:${req.sandboxId}`); return { ips: ["10.88.0.2"] } as never; },
      tearDown: async (id) => { held.delete(`cni:${id}`); },
      listCached: async () => [...held].filter((h) => h.startsWith("cni:")).map((h) => h.slice(4)),
    },
    infra: {
      // A failed start undoes itself (the InfraRuntime contract).
      start: async (i) => { fail("infra"); held.add(`infra:${i.id}`); held.add(`infra-state:${i.id}`); return { pid: 4242, cgroupsPath: `/berth/berth-${i.id}` }; },
      stop: async (rec) => { calls.push(`infra.stop ${rec.id}`); held.delete(`infra:${rec.id}`); },
      remove: async (rec) => { held.delete(`infra-state:${rec.id}`); },
      alive: async (rec) => held.has(`infra:${rec.id}`),
    },
    containers: {
      stopAll: async (id) => { calls.push(`containers.stopAll ${id}`); },
      removeAll: async (id) => { calls.push(`containers.removeAll ${id}`); },
    },
    mountFeatures: new Map([["runc", features]]),
  };
  return { d, held, calls, store, heal: () => { failAt = undefined; }, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

function request(o: { userns?: boolean; hostNetwork?: boolean; pid?: NamespaceMode } = {}): RunPodSandboxRequest {
  return create(RunPodSandboxRequestSchema, {
    config: {
      metadata: { name: "web", namespace: "default", uid: "u1", attempt: 0 },
      linux: {
        securityContext: {
          namespaceOptions: {
            network: o.hostNetwork ? NamespaceMode.NODE : NamespaceMode.POD,
            pid: o.pid ?? NamespaceMode.POD,
            ...(o.userns ? {
              usernsOptions: {
                mode: NamespaceMode.POD,
                uids: [{ containerId: 0, hostId: 65536, length: 65536 }],
                gids: [{ containerId: 0, hostId: 65536, length: 65536 }],
              },
            } : {}),
          },
        },
      },
    },
  });
}

test("RunPodSandbox acquires every resource and records the pod ready", async () => {
  const f = await fakes();
  try {
    const id = await runSandbox(f.d, request());
    const rec = f.store.get(id);
    assert.equal(rec.state, "ready");
    assert.deepEqual(rec.ips, ["10.88.0.2"]);
    assert.equal(rec.infra.pid, 4242);
    assert.deepEqual([...f.held].map((h) => h.split(":")[0]).sort(), ["cni", "dir", "infra", "infra-state", "netns", "shm"]);
  } finally { await f.cleanup(); }
});

test("a pod that does not share a PID namespace gets pinned ipc/uts namespaces and no infra process", async () => {
  const f = await fakes();
  try {
    const id = await runSandbox(f.d, request({ pid: NamespaceMode.CONTAINER }));
    const rec = f.store.get(id);
    assert.equal(rec.state, "ready");
    assert.equal(rec.infra.pid, 0);
    assert.deepEqual(rec.pins, { ipc: `${rec.podDir}/ns/ipc`, uts: `${rec.podDir}/ns/uts` });
    assert.deepEqual([...f.held].map((h) => h.split(":")[0]).sort(), ["cni", "dir", "netns", "pin", "pin", "shm"]);
    // Host network: only the ipc namespace is pinned (the pod uses the host's uts namespace).
    const host = await runSandbox(f.d, create(RunPodSandboxRequestSchema, { config: { metadata: { name: "h", namespace: "default", uid: "u9", attempt: 0 }, linux: { securityContext: { namespaceOptions: { network: NamespaceMode.NODE, pid: NamespaceMode.NODE } } } } }));
    assert.deepEqual(f.store.get(host).pins, { ipc: `${f.store.get(host).podDir}/ns/ipc`, uts: "" });
    // runtime.drop_infra = false: an infra process as before.
    f.d.config.runtime.drop_infra = false;
    const old = await runSandbox(f.d, create(RunPodSandboxRequestSchema, { config: { metadata: { name: "o", namespace: "default", uid: "u8", attempt: 0 }, linux: { securityContext: { namespaceOptions: { pid: NamespaceMode.CONTAINER } } } } }));
    assert.equal(f.store.get(old).pins, undefined);
    assert.equal(f.store.get(old).infra.pid, 4242);
    await stopSandbox(f.d, id);
    assert.deepEqual([...f.held].filter((h) => h.includes(id)), [`dir:${rec.podDir}`], "stop releases the pins");
    assert.ok(!f.calls.includes(`infra.stop ${id}`), "no infra process to stop");
  } finally { await f.cleanup(); }
});

for (const variant of [
  { name: "plain pod", userns: false, pid: NamespaceMode.POD },
  { name: "pod with its own user namespace", userns: true, pid: NamespaceMode.POD },
  { name: "plain pod without infra", userns: false, pid: NamespaceMode.CONTAINER },
  { name: "pod with its own user namespace, without infra", userns: true, pid: NamespaceMode.CONTAINER },
  { name: "plain pod, one namespaces call", userns: false, pid: NamespaceMode.POD, together: true },
  { name: "plain pod without infra, one namespaces call", userns: false, pid: NamespaceMode.CONTAINER, together: true },
  { name: "pod with its own user namespace, without infra (one namespaces call offered)", userns: true, pid: NamespaceMode.CONTAINER, together: true },
]) {
  for (const step of STEPS) {
    if (step === "netns" && variant.userns) continue; // its netns comes from the user namespace step
    if (step === "user namespace" && !variant.userns) continue;
    if (step === "infra" && variant.pid !== NamespaceMode.POD) continue;
    if (step === "pins" && variant.pid === NamespaceMode.POD) continue;
    test(`rollback (${variant.name}): a failure at "${step}" releases everything acquired`, async () => {
      const f = await fakes(step, { together: !!variant.together });
      try {
        await assert.rejects(runSandbox(f.d, request({ userns: variant.userns, pid: variant.pid })), (e: Error) => e instanceof Injected && e.message.includes(step));
        assert.deepEqual([...f.held], [], "every acquired resource is released");
        assert.deepEqual(f.store.list(), [], "no record is left");
        // The name is free again: the same request (no failure now) creates a pod.
        f.heal();
        const id = await runSandbox(f.d, request({ userns: variant.userns, pid: variant.pid }));
        assert.equal(f.store.get(id).state, "ready");
      } finally { await f.cleanup(); }
    });
  }
}

test("a retry of the same RunPodSandbox joins the create in progress; another request for the name is ALREADY_EXISTS", async () => {
  const f = await fakes();
  try {
    const [a, b] = await Promise.all([runSandbox(f.d, request()), runSandbox(f.d, request())]);
    assert.equal(a, b);
    assert.equal(f.store.list().length, 1);
    await assert.rejects(runSandbox(f.d, request({ hostNetwork: true })), (e: unknown) => e instanceof BerthError && e.code === Code.ALREADY_EXISTS && /already reserved by sandbox/.test(e.message));
  } finally { await f.cleanup(); }
});

test("bad input is refused before anything is acquired", async () => {
  const f = await fakes();
  try {
    const req = request();
    req.runtimeHandler = "nope";
    await assert.rejects(runSandbox(f.d, req), (e: unknown) => e instanceof BerthError && e.code === Code.INVALID_ARGUMENT && /runtime handler "nope"/.test(e.message));
    f.d.mountFeatures = new Map();
    await assert.rejects(runSandbox(f.d, request({ userns: true })), /does not support user namespaces here \(not probed\)/);
    assert.deepEqual([...f.held], []);
    assert.deepEqual(f.store.list(), []);
  } finally { await f.cleanup(); }
});

test("StopPodSandbox stops the containers, releases the pod's resources and keeps it not ready; idempotent", async () => {
  const f = await fakes();
  try {
    const id = await runSandbox(f.d, request());
    await stopSandbox(f.d, id);
    assert.equal(f.store.get(id).state, "notready");
    assert.deepEqual([...f.held].sort(), [`dir:${f.store.get(id).podDir}`, `infra-state:${id}`]);
    assert.equal(f.calls[0], `containers.stopAll ${id}`, "containers stop before the infra");
    await stopSandbox(f.d, id);
    await stopSandbox(f.d, "f".repeat(64)); // unknown: succeeds
    assert.equal(f.store.get(id).state, "notready");
  } finally { await f.cleanup(); }
});

test("RemovePodSandbox removes the containers and every resource and the record; the name is free again", async () => {
  const f = await fakes();
  try {
    const id = await runSandbox(f.d, request());
    await removeSandbox(f.d, id);
    assert.deepEqual([...f.held], []);
    assert.deepEqual(f.store.list(), []);
    assert.ok(f.calls.includes(`containers.removeAll ${id}`));
    await removeSandbox(f.d, id); // again: succeeds
    const again = await runSandbox(f.d, request());
    assert.notEqual(again, id);
  } finally { await f.cleanup(); }
});

test("a failing release keeps the record for the caller's retry (strict teardown)", async () => {
  const f = await fakes();
  try {
    const id = await runSandbox(f.d, request());
    const tearDown = f.d.network.tearDown;
    f.d.network.tearDown = async () => { throw new Error("CNI DEL failed"); };
    await assert.rejects(removeSandbox(f.d, id), /CNI DEL failed/);
    assert.equal(f.store.get(id).state, "ready", "not recorded stopped");
    f.d.network.tearDown = tearDown;
    await removeSandbox(f.d, id);
    assert.deepEqual([...f.held], []);
  } finally { await f.cleanup(); }
});

test("recovery tears down an interrupted create, marks a pod with a dead infra not ready, and sweeps orphans", async () => {
  const f = await fakes();
  try {
    const ready = await runSandbox(f.d, request());
    const dead = await runSandbox(f.d, create(RunPodSandboxRequestSchema, { config: { metadata: { name: "db", namespace: "default", uid: "u2", attempt: 0 } } }));
    // A create a crash interrupted: its record says creating and names a netns and shm.
    const interrupted = await runSandbox(f.d, create(RunPodSandboxRequestSchema, { config: { metadata: { name: "job", namespace: "default", uid: "u3", attempt: 0 } } }));
    await f.store.update(interrupted, (r) => { r.state = "creating"; });
    f.held.delete(`infra:${dead}`); // its infra process died while berthd was down
    f.held.add("cni:orphan"); f.held.add("netns:/netns/orphan"); f.held.add("userns:orphan");
    // A restart: a new store reads the records from disk.
    f.d.store = new Store<SandboxRecord>("sandbox", join(f.d.config.root, "sandboxes"));
    await recoverSandboxes(f.d);
    assert.equal(f.d.store.get(ready).state, "ready");
    assert.equal(f.d.store.get(dead).state, "notready");
    assert.match(f.d.store.get(dead).reason ?? "", /infra process exited while berthd was down/);
    assert.equal(f.d.store.tryGet(interrupted), undefined);
    assert.deepEqual([...f.held].filter((h) => h.includes(interrupted) || h.includes("orphan")), []);
  } finally { await f.cleanup(); }
});

test("recovery: a pod without infra stays ready while its pins exist, turns not ready when one is gone; orphan pins are removed", async () => {
  const f = await fakes();
  try {
    const kept = await runSandbox(f.d, request({ pid: NamespaceMode.CONTAINER }));
    const lost = await runSandbox(f.d, create(RunPodSandboxRequestSchema, { config: { metadata: { name: "db", namespace: "default", uid: "u2", attempt: 0 }, linux: { securityContext: { namespaceOptions: { pid: NamespaceMode.CONTAINER } } } } }));
    f.held.delete(`pin:${f.store.get(lost).pins!.uts}`);
    // The pod directory of an unknown sandbox with pins inside.
    const orphanDir = join(f.d.config.state, "sandboxes", "orphan");
    f.held.add(`dir:${orphanDir}`); f.held.add(`pin:${orphanDir}/ns/ipc`); f.held.add(`pin:${orphanDir}/ns/uts`);
    f.d.store = new Store<SandboxRecord>("sandbox", join(f.d.config.root, "sandboxes"));
    await recoverSandboxes(f.d);
    assert.equal(f.d.store.get(kept).state, "ready");
    assert.equal(f.d.store.get(lost).state, "notready");
    assert.match(f.d.store.get(lost).reason ?? "", /pinned ipc\/uts namespaces were gone/);
    assert.deepEqual([...f.held].filter((h) => h.includes("orphan")), []);
    await removeSandbox(f.d, kept);
    await removeSandbox(f.d, lost);
    assert.deepEqual([...f.held], []);
  } finally { await f.cleanup(); }
});
