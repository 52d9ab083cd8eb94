import { test } from "node:test";
import assert from "node:assert/strict";
import { defaultSpec, defaultRlimits, withDefaultMounts, newSpec, DEFAULT_DEVICE_RULES } from "./default-spec.ts";

test("default mounts: sysfs and cgroup are read-only unless privileged", () => {
  const s = defaultSpec({ rootfs: "rootfs" });
  const sys = s.mounts!.find((m) => m.destination === "/sys")!;
  assert.ok(sys.options!.includes("ro"));
  assert.ok(s.mounts!.find((m) => m.destination === "/sys/fs/cgroup")!.options!.includes("ro"));
  const p = defaultSpec({ rootfs: "rootfs", privileged: true });
  assert.ok(p.mounts!.find((m) => m.destination === "/sys")!.options!.includes("rw"));
});

test("default mounts cover proc, dev, devpts, shm, mqueue", () => {
  const dests = defaultSpec({ rootfs: "r" }).mounts!.map((m) => m.destination);
  for (const d of ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"]) assert.ok(dests.includes(d), d);
});

test("withDefaultMounts keeps existing mounts at other destinations", async () => {
  const s = newSpec("r");
  s.mounts = [{ destination: "/data", type: "bind", source: "/x" }, { destination: "/proc", type: "bind", source: "/bad" }];
  await withDefaultMounts()(s, undefined);
  assert.ok(s.mounts.some((m) => m.destination === "/data"));
  assert.equal(s.mounts.filter((m) => m.destination === "/proc").length, 1);
  assert.equal(s.mounts.find((m) => m.destination === "/proc")!.type, "proc");
});

test("device rules deny everything first, then allow the defaults; rlimits default nofile", () => {
  const s = defaultSpec({ rootfs: "r" });
  assert.deepEqual(s.linux!.resources!.devices, DEFAULT_DEVICE_RULES);
  assert.equal(s.linux!.resources!.devices![0]!.allow, false);
  assert.equal(s.process!.rlimits![0]!.type, "RLIMIT_NOFILE");
});

test("default nofile limit never exceeds the caller's own hard limit", () => {
  assert.deepEqual(defaultRlimits("Max open files            1024                 20000                files\n"), [{ type: "RLIMIT_NOFILE", hard: 20000, soft: 20000 }]);
  assert.equal(defaultRlimits("Max open files  unlimited unlimited files\n")[0]!.hard, 1048576);
  assert.equal(defaultRlimits("")[0]!.hard, 1048576);
});
