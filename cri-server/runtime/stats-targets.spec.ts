import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Context } from "../context.ts";
import type { ContainerRecord } from "../container/container-record.ts";
import type { SandboxRecord } from "../sandbox/sandbox-record.ts";
import { containerTarget, netnsStandIn, podTarget } from "./stats-targets.ts";

const ctx = { images: { root: "/var/lib/berth", upperDir: (id: string) => `/var/lib/berth/snapshots/containers/${id}/fs` } } as unknown as Context;

const ctr = (over: Partial<ContainerRecord>): ContainerRecord => ({
  id: "c1", sandboxId: "p1", state: "running", cgroupsPath: "/berth/berth-c1",
  metadata: { name: "app", attempt: 0 }, labels: { a: "1" }, annotations: { b: "2" }, ...over,
} as ContainerRecord);

const sb = (over: Partial<SandboxRecord>): SandboxRecord => ({
  id: "p1", state: "ready", cgroupParent: "", netnsPath: "/run/netns/x", infra: { pid: 42, bundle: "", cgroupsPath: "/berth/infra" },
  metadata: { name: "pod", uid: "u", namespace: "ns", attempt: 0 }, labels: {}, annotations: {}, ...over,
} as SandboxRecord);

describe("containerTarget", () => {
  it("has the cgroup of a running container, its upper dir and its attributes", () => {
    assert.deepEqual(containerTarget(ctx, ctr({})), {
      id: "c1", cgroupsPath: "/berth/berth-c1",
      writableLayerDir: "/var/lib/berth/snapshots/containers/c1/fs", fsMountpoint: "/var/lib/berth",
      attributes: { id: "c1", metadata: { name: "app", attempt: 0 }, labels: { a: "1" }, annotations: { b: "2" } },
    });
  });
  it("has no cgroup for a created or exited container", () => {
    assert.equal(containerTarget(ctx, ctr({ state: "exited" })).cgroupsPath, undefined);
    assert.equal(containerTarget(ctx, ctr({ state: "created" })).cgroupsPath, undefined);
  });
});

describe("podTarget", () => {
  it("uses the cgroup parent as the pod cgroup and the infra pid for the network", () => {
    const t = podTarget(ctx, sb({ cgroupParent: "kubepods/burstable/pod1" }), [ctr({})]);
    assert.equal(t.cgroupsPath, "/kubepods/burstable/pod1");
    assert.equal(t.netnsPid, 42);
    assert.deepEqual(t.containers.map((c) => c.id), ["c1"]);
  });
  it("sums containers without a cgroup parent, and has no network for host-network or stopped pods", () => {
    assert.equal(podTarget(ctx, sb({}), []).cgroupsPath, undefined);
    assert.equal(podTarget(ctx, sb({ netnsPath: "" }), []).netnsPid, undefined);
    const stopped = podTarget(ctx, sb({ state: "notready", cgroupParent: "/kubepods/pod1" }), []);
    assert.equal(stopped.netnsPid, undefined);
    assert.equal(stopped.cgroupsPath, undefined);
  });
});

describe("podTarget without an infra process", () => {
  it("takes network counters from a running container, else from the pinned netns (a stand-in pid below 0, stable per netns)", () => {
    const pod = sb({ infra: { pid: 0, bundle: "", cgroupsPath: "" }, pins: { ipc: "/s/p1/ns/ipc", uts: "/s/p1/ns/uts" } });
    assert.equal(podTarget(ctx, pod, [ctr({ state: "exited", pid: 7 }), ctr({ id: "c2", pid: 77 })]).netnsPid, 77);
    const k = podTarget(ctx, pod, [ctr({ state: "exited", pid: 7 })]).netnsPid!;
    assert.ok(k < 0);
    assert.equal(podTarget(ctx, pod, []).netnsPid, k);
    assert.equal(netnsStandIn("/run/netns/other") < 0 && netnsStandIn("/run/netns/other") !== k, true);
    assert.equal(podTarget(ctx, { ...pod, netnsPath: "" }, []).netnsPid, undefined, "host network: none");
  });
});
