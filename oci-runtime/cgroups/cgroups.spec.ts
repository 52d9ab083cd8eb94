import { test } from "node:test";
import assert from "node:assert/strict";
import { BerthError, Code } from "../foundation/errdefs.ts";
import { parseMountInfo, mountOf, isShared } from "../foundation/mountinfo.ts";
import { cgroupLayout, v1Controllers } from "./mode.ts";
import { cgroupDirs, cgroupParentPath, cgroupPathUnder, containerCgroupsPath } from "./paths.ts";

const HYBRID = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;

test("hybrid, v1 and v2 layouts are told apart", () => {
  const h = cgroupLayout(parseMountInfo(HYBRID));
  assert.equal(h.mode, "hybrid");
  assert.equal(h.v2, "/sys/fs/cgroup/unified");
  assert.deepEqual(h.v1.map((x) => x.controllers), [["cpu"], ["memory"], ["name=systemd"]]);
  assert.equal(cgroupLayout(parseMountInfo(HYBRID.split("\n").slice(0, 4).join("\n"))).mode, "v1");
  const v2 = cgroupLayout(parseMountInfo("30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n"));
  assert.deepEqual(v2, { mode: "v2", v1: [], v2: "/sys/fs/cgroup", v2Root: "/" });
});

const inv = (re: RegExp) => (e: unknown) => e instanceof BerthError && e.code === Code.INVALID_ARGUMENT && re.test(e.message);

test("container and infra cgroups path is <parent>/berth-<id>; the parent is folded to an absolute path", () => {
  assert.equal(containerCgroupsPath("/kubepods/besteffort/podUID", "abc"), "/kubepods/besteffort/podUID/berth-abc");
  assert.equal(containerCgroupsPath("kubepods//burstable/", "abc"), "/kubepods/burstable/berth-abc");
  assert.equal(containerCgroupsPath(undefined, "abc"), "/berth/berth-abc");
  assert.equal(containerCgroupsPath("", "abc"), "/berth/berth-abc");
  assert.equal(cgroupPathUnder("/kubepods/pod1", "berth-conmon-abc"), "/kubepods/pod1/berth-conmon-abc");
  assert.equal(cgroupParentPath("/kubepods/pod-1_x.y@z"), "/kubepods/pod-1_x.y@z");
});

test("cgroup_parent escapes and hostile values are refused with INVALID_ARGUMENT naming the field and value", () => {
  const cases: [string, RegExp][] = [
    ["/a/../b", /config\.linux\.cgroup_parent "\/a\/\.\.\/b" contains "\." or "\.\."/],
    ["..", /contains "\." or "\.\."/],
    ["../../sys/fs/cgroup", /contains "\." or "\.\."/],
    ["/kubepods/./x", /contains "\." or "\.\."/],
    ["/a\0b", /NUL or a control character/],
    ["/a\nb", /NUL or a control character/],
    ["/", /names the root cgroup/],
    ["///", /names the root cgroup/],
    ["kubepods.slice", /systemd slice/],
    ["kubepods.slice:berth:abc", /systemd slice/],
    [`/${"x".repeat(256)}`, /component of 256 characters, more than the limit of 255/],
    ["/a".repeat(65), /65 levels deep, more than the limit of 64/],
    [`/${"a/".repeat(2100)}`, /4201 characters long, more than the limit of 4096/],
  ];
  for (const [bad, re] of cases) {
    assert.throws(() => cgroupParentPath(bad), inv(/^config\.linux\.cgroup_parent/), JSON.stringify(bad));
    assert.throws(() => cgroupParentPath(bad), inv(re), JSON.stringify(bad));
    assert.throws(() => containerCgroupsPath(bad, "abc"), inv(/cgroup_parent/), JSON.stringify(bad));
  }
  assert.throws(() => cgroupParentPath("/a/../b", "sandbox p1 cgroup_parent"), inv(/^sandbox p1 cgroup_parent/));
});

test("a cgroup name (the leaf) must be one plain component", () => {
  for (const bad of ["../x", "a/b", "", ".hidden", "..", "x".repeat(256)]) assert.throws(() => cgroupPathUnder("/k", bad), inv(/invalid cgroup name/), bad);
  for (const bad of ["../x", "a/b", "x".repeat(250)]) assert.throws(() => containerCgroupsPath("/k", bad), inv(/invalid cgroup name/), bad);
});

test("a containerised berth sees its own subtree: the mounted cgroup is taken off the front, never the mount itself", () => {
  const l = cgroupLayout(parseMountInfo("30 23 0:26 /kubepods/pod9 /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"));
  assert.equal(l.v2Root, "/kubepods/pod9");
  assert.deepEqual(cgroupDirs(l, "/kubepods/pod9/berth-c1"), ["/sys/fs/cgroup/berth-c1"]);
  assert.deepEqual(cgroupDirs(l, "/kubepods/pod9"), [], "the mounted cgroup itself is never a berth cgroup");
  assert.deepEqual(cgroupDirs(l, "/other/berth-c1"), ["/sys/fs/cgroup/other/berth-c1"]);
});

test("cgroup dirs cover every v1 hierarchy and the v2 tree, never the root", () => {
  const h = cgroupLayout(parseMountInfo(HYBRID));
  assert.deepEqual(cgroupDirs(h, "/k/c1"), ["/sys/fs/cgroup/cpu/k/c1", "/sys/fs/cgroup/memory/k/c1", "/sys/fs/cgroup/systemd/k/c1", "/sys/fs/cgroup/unified/k/c1"]);
  assert.deepEqual(cgroupDirs(h, "/"), []);
});

test("mountinfo: escaped paths, optional fields and the containing mount", () => {
  const m = parseMountInfo("1 0 8:1 / / rw shared:1 - ext4 /dev/sda rw\n2 1 8:2 / /mnt/a\\040b rw master:4 - ext4 /dev/sdb rw\n");
  assert.equal(m[1]!.mountPoint, "/mnt/a b");
  assert.equal(mountOf(m, "/mnt/a b/x")!.id, 2);
  assert.equal(mountOf(m, "/mnt/a bc")!.id, 1);
  assert.ok(isShared(m[0]!));
});

test("v1 controllers come from super options without flags or key=value options", () => {
  assert.deepEqual(v1Controllers(["rw", "cpu", "cpuacct"]), ["cpu", "cpuacct"]);
  assert.deepEqual(v1Controllers(["rw", "xattr", "name=systemd"]), ["name=systemd"]);
  assert.deepEqual(v1Controllers(["rw", "cpuset", "noprefix", "release_agent=/sbin/x", "clone_children"]), ["cpuset"]);
  assert.deepEqual(v1Controllers([""]), []);
});
