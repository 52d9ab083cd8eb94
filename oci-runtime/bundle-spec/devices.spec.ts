import { test } from "node:test";
import assert from "node:assert/strict";
import { BerthError, Code } from "../foundation/errdefs.ts";
import { defaultSpec } from "./default-spec.ts";
import { criDevices, majorMinor, withDevices, type DeviceHost, type DeviceStat } from "./devices.ts";

const dev = (major: number, minor: number, isChar = true): DeviceStat =>
  ({ isChar, isBlock: !isChar, isDir: false, rdev: (BigInt(major) << 8n) | BigInt(minor), mode: 0o20666, uid: 0, gid: 6 });
const host: DeviceHost = {
  async stat(p) {
    const table: Record<string, DeviceStat> = {
      "/dev/fuse": dev(10, 229), "/dev/sda": dev(8, 0, false), "/dev/dri": { ...dev(0, 0), isChar: false, isDir: true },
      "/dev/dri/card0": dev(226, 0), "/etc/passwd": { ...dev(0, 0), isChar: false },
    };
    const s = table[p];
    if (!s) throw Object.assign(new Error("ENOENT"), { code: "ENOENT" });
    return s;
  },
  async readdir() { return ["card0"]; },
};
const isInvalid = (e: unknown) => e instanceof BerthError && e.code === Code.INVALID_ARGUMENT;

test("majorMinor decodes large device numbers", () => {
  assert.deepEqual(majorMinor((259n << 8n) | 3n), { major: 259, minor: 3 });
  // minor 256 lives in the high bits
  assert.deepEqual(majorMinor(((256n & ~0xffn) << 12n) | (8n << 8n)), { major: 8, minor: 256 });
});

test("char and block devices get nodes and cgroup rules with the given permissions", async () => {
  const { devices, rules } = await criDevices([{ containerPath: "/dev/fuse", hostPath: "/dev/fuse", permissions: "rw" }, { containerPath: "/dev/xvda", hostPath: "/dev/sda" }], host);
  assert.deepEqual(devices[0], { type: "c", path: "/dev/fuse", major: 10, minor: 229, fileMode: 0o666, uid: 0, gid: 6 });
  assert.deepEqual(rules[0], { allow: true, type: "c", major: 10, minor: 229, access: "rw" });
  assert.equal(devices[1]!.type, "b");
  assert.equal(rules[1]!.access, "rwm");
});

test("a directory adds the devices inside it", async () => {
  const { devices } = await criDevices([{ containerPath: "/dev/dri", hostPath: "/dev/dri" }], host);
  assert.deepEqual(devices.map((d) => d.path), ["/dev/dri/card0"]);
});

test("missing paths, non-devices and bad permissions are invalid", async () => {
  await assert.rejects(criDevices([{ containerPath: "/dev/x", hostPath: "/dev/none" }], host), isInvalid);
  await assert.rejects(criDevices([{ containerPath: "/dev/x", hostPath: "/etc/passwd" }], host), isInvalid);
  await assert.rejects(criDevices([{ containerPath: "/dev/x", hostPath: "/dev/fuse", permissions: "rwx" }], host), isInvalid);
});

test("withDevices appends rules after the defaults", async () => {
  const s = defaultSpec({ rootfs: "r" });
  const n = s.linux!.resources!.devices!.length;
  await withDevices([{ containerPath: "/dev/fuse", hostPath: "/dev/fuse" }], host)(s, undefined);
  assert.equal(s.linux!.devices!.length, 1);
  assert.equal(s.linux!.resources!.devices!.length, n + 1);
});
