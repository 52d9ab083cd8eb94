import { test } from "node:test";
import assert from "node:assert/strict";
import { BerthError, Code } from "../foundation/errdefs.ts";
import { defaultSpec } from "./default-spec.ts";
import { clampOomScoreAdj, ociResources, withResources } from "./resources.ts";

const isInvalid = (e: unknown) => e instanceof BerthError && e.code === Code.INVALID_ARGUMENT;

test("cpu, memory, cpuset, hugepages and pids map to OCI fields; zeros are left out", () => {
  const r = ociResources({ cpuPeriod: 100000n, cpuQuota: 50000n, cpuShares: 512n, memoryLimitInBytes: 64n << 20n, cpusetCpus: "0", cpusetMems: "0",
    hugepageLimits: [{ pageSize: "2MB", limit: 0n }], pidsLimit: 100 }, { cgroupV2: false });
  assert.deepEqual(r, { cpu: { period: 100000, quota: 50000, shares: 512, cpus: "0", mems: "0" }, memory: { limit: 67108864 },
    hugepageLimits: [{ pageSize: "2MB", limit: 0 }], pids: { limit: 100 } });
  assert.deepEqual(ociResources({ cpuPeriod: 0, cpuQuota: 0, memoryLimitInBytes: 0 }, { cgroupV2: false }), {});
});

test("swap needs a memory limit and must not be below it; -1 means unlimited", () => {
  assert.throws(() => ociResources({ memorySwapLimitInBytes: 10 }, { cgroupV2: false }), isInvalid);
  assert.throws(() => ociResources({ memoryLimitInBytes: 100, memorySwapLimitInBytes: 10 }, { cgroupV2: false }), isInvalid);
  assert.equal(ociResources({ memoryLimitInBytes: 100, memorySwapLimitInBytes: -1 }, { cgroupV2: false }).memory!.swap, -1);
  assert.equal(ociResources({ memoryLimitInBytes: 100, memorySwapLimitInBytes: 200 }, { cgroupV2: false }).memory!.swap, 200);
});

test("unified keys only on cgroup v2", () => {
  assert.throws(() => ociResources({ unified: { "memory.high": "1000" } }, { cgroupV2: false }), isInvalid);
  assert.deepEqual(ociResources({ unified: { "memory.high": "1000" } }, { cgroupV2: true }).unified, { "memory.high": "1000" });
  assert.throws(() => ociResources({ hugepageLimits: [{ pageSize: "2M", limit: 1 }] }, { cgroupV2: true }), isInvalid);
});

test("oom_score_adj is clamped to the caller's own value and the kernel range", () => {
  assert.equal(clampOomScoreAdj(-998, -500), -500);
  assert.equal(clampOomScoreAdj(-998, -1000), -998);
  assert.equal(clampOomScoreAdj(2000, 0), 1000);
  assert.equal(clampOomScoreAdj(-5000, -2000), -1000);
});

test("withResources keeps device rules and sets a clamped oomScoreAdj", async () => {
  const s = defaultSpec({ rootfs: "r" });
  const devices = s.linux!.resources!.devices;
  await withResources({ cpuShares: 2, oomScoreAdj: -999 }, { cgroupV2: false, minOomScoreAdj: -100 })(s, undefined);
  assert.deepEqual(s.linux!.resources!.devices, devices);
  assert.equal(s.linux!.resources!.cpu!.shares, 2);
  assert.equal(s.process!.oomScoreAdj, -100);
});
