import { test } from "node:test";
import assert from "node:assert/strict";
import { mountAt, parseMountInfo } from "./mountinfo.ts";

test("parses mountinfo lines with optional fields and octal escapes", () => {
  const text = [
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw",
    "52 27 0:4 net:[4026532250] /run/berth/netns/a\\040b rw - nsfs nsfs rw",
    "60 22 0:50 / /tmp/x rw,nosuid shared:7 master:3 - tmpfs shm rw,size=65536k",
    "61 22 0:51 /a\\134b /tmp/tab\\011nl\\012end rw - tmpfs src\\040dev rw",
    "",
  ].join("\n");
  assert.deepEqual(parseMountInfo(text), [
    { id: 22, parent: 1, root: "/", mountPoint: "/", options: ["rw", "relatime"], optional: ["shared:1"], fsType: "ext4", source: "/dev/sda1", superOptions: ["rw"] },
    { id: 52, parent: 27, root: "net:[4026532250]", mountPoint: "/run/berth/netns/a b", options: ["rw"], optional: [], fsType: "nsfs", source: "nsfs", superOptions: ["rw"] },
    { id: 60, parent: 22, root: "/", mountPoint: "/tmp/x", options: ["rw", "nosuid"], optional: ["shared:7", "master:3"], fsType: "tmpfs", source: "shm", superOptions: ["rw", "size=65536k"] },
    { id: 61, parent: 22, root: "/a\\b", mountPoint: "/tmp/tab\tnl\nend", options: ["rw"], optional: [], fsType: "tmpfs", source: "src dev", superOptions: ["rw"] },
  ]);
});

test("mountAt finds the topmost mount at exactly the path", () => {
  const m = parseMountInfo([
    "1 0 8:1 / / rw - ext4 /dev/sda rw",
    "2 1 0:2 / /run/x rw - tmpfs a rw",
    "3 2 0:3 / /run/x rw - tmpfs b rw",
  ].join("\n"));
  assert.equal(mountAt(m, "/run/x")?.id, 3);
  assert.equal(mountAt(m, "/run/x/y"), undefined);
  assert.equal(mountAt(m, "/run"), undefined);
});
