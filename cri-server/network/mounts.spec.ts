import { test } from "node:test";
import assert from "node:assert/strict";
import { parseMountInfo } from "./mounts.ts";

test("parses mountinfo lines with optional fields and octal escapes", () => {
  const text = [
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw",
    "52 27 0:4 net:[4026532250] /run/berth/netns/a\\040b rw - nsfs nsfs rw",
    "60 22 0:50 / /tmp/x rw,nosuid shared:7 master:3 - tmpfs shm rw,size=65536k",
    "",
  ].join("\n");
  assert.deepEqual(parseMountInfo(text), [
    { mountPoint: "/", optional: ["shared:1"], fsType: "ext4", source: "/dev/sda1" },
    { mountPoint: "/run/berth/netns/a b", optional: [], fsType: "nsfs", source: "nsfs" },
    { mountPoint: "/tmp/x", optional: ["shared:7", "master:3"], fsType: "tmpfs", source: "shm" },
  ]);
});
