import { test } from "node:test";
import assert from "node:assert/strict";
import { devMajor, devMinor, hostDevices } from "./host-devices.ts";

test("dev_t decoding matches glibc's major/minor", () => {
  assert.deepEqual([devMajor(0x0103n), devMinor(0x0103n)], [1, 3]); // /dev/null
  assert.deepEqual([devMajor(0x8801n), devMinor(0x8801n)], [136, 1]); // /dev/pts/1
  // large numbers: major 259 minor 65536 -> (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12)
  const rdev = (0n & 0xffn) | ((259n & 0xfffn) << 8n) | ((65536n & ~0xffn) << 12n);
  assert.deepEqual([devMajor(rdev), devMinor(rdev)], [259, 65536]);
});

test("walking /dev finds device nodes and skips pts, shm, mqueue, console and non-devices", async () => {
  const devs = await hostDevices("/dev");
  const nul = devs.find((d) => d.path === "/dev/null");
  assert.deepEqual(nul && { type: nul.type, major: nul.major, minor: nul.minor }, { type: "c", major: 1, minor: 3 });
  assert.equal(nul!.fileMode, 0o666);
  for (const d of devs) {
    assert.ok(d.type === "c" || d.type === "b", d.path);
    assert.ok(!/^\/dev\/(pts|shm|mqueue|fd)\//.test(d.path), d.path);
    assert.notEqual(d.path, "/dev/console");
  }
  assert.ok(!devs.some((d) => d.path === "/dev/stdin" || d.path === "/dev/fd"), "symlinks are not devices");
});

test("a missing directory gives no devices", async () => {
  assert.deepEqual(await hostDevices("/nonexistent-berth-dev"), []);
});
