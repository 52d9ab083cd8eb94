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

test("findMount reads a mount table larger than its first buffer and finds the topmost mount at exactly the path", async () => {
  const { mkdtemp, writeFile, rm } = await import("node:fs/promises");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const { findMount } = await import("./mountinfo.ts");
  const dir = await mkdtemp(join(tmpdir(), "berth-mountinfo-"));
  try {
    const lines = ["1 0 8:1 / / rw - ext4 /dev/sda rw"];
    // 3,000 pods' worth of lines (about 300 KB): the file is read past the 64 KiB first buffer.
    for (let i = 0; i < 3000; i++) lines.push(`${i + 10} 1 0:${i} / /run/berth/shm/pod${i} rw,nosuid - tmpfs shm rw,size=65536k`);
    lines.push("9001 1 0:9 /run/x /run/y rw - tmpfs root-field-only rw"); // "/run/x" as root, not as mount point
    lines.push("9002 1 0:9 / /run/a\\040b rw - tmpfs spaced rw");
    lines.push("9003 1 0:9 / /run/berth/shm/pod7 rw - nsfs over rw"); // mounted over pod7's tmpfs
    const file = join(dir, "mountinfo");
    await writeFile(file, lines.join("\n") + "\n");
    assert.equal((await findMount("/run/berth/shm/pod7", file))?.fsType, "nsfs");
    assert.equal((await findMount("/run/berth/shm/pod2999", file))?.id, 3009);
    assert.equal((await findMount("/run/berth/shm/pod29", file))?.id, 39);
    assert.equal(await findMount("/run/berth/shm/pod", file), undefined);
    assert.equal(await findMount("/run/x", file), undefined);
    assert.equal((await findMount("/run/a b", file))?.source, "spaced");
    assert.equal((await findMount("/", file))?.id, 1);
    assert.equal(await findMount("/run/berth/shm/pod1", join(dir, "empty-absent")).catch((e: Error) => e.message.includes("ENOENT")), true);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("mountPointsUnder lists the mount points at or below a directory, in table order, and nothing that only shares a prefix", async () => {
  const { mkdtemp, writeFile, rm } = await import("node:fs/promises");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const { mountPointsUnder } = await import("./mountinfo.ts");
  const dir = await mkdtemp(join(tmpdir(), "berth-mountinfo-"));
  try {
    const lines = ["1 0 8:1 / / rw - ext4 /dev/sda rw"];
    for (let i = 0; i < 2000; i++) lines.push(`${i + 10} 1 0:${i} / /s/userns/pods/p${i}/netns rw - nsfs nsfs rw`);
    lines.push("5000 1 0:9 / /s/userns/pods/p7/rootfs rw - overlay overlay rw");
    lines.push("5001 1 0:9 /s/userns/pods/p7 /other rw - tmpfs x rw"); // p7 only as the root field
    lines.push("5002 1 0:9 / /s/userns/pods/p7\\040x rw - tmpfs spaced rw"); // a sibling "p7 x"
    lines.push("5003 1 0:9 / /s/userns/pods/p7 rw - tmpfs self rw");
    const file = join(dir, "mountinfo");
    await writeFile(file, lines.join("\n") + "\n");
    assert.deepEqual(await mountPointsUnder("/s/userns/pods/p7/", file), ["/s/userns/pods/p7/netns", "/s/userns/pods/p7/rootfs", "/s/userns/pods/p7"]);
    assert.deepEqual(await mountPointsUnder("/s/userns/pods/p7 x", file), ["/s/userns/pods/p7 x"]);
    assert.deepEqual(await mountPointsUnder("/s/userns/pods/p2000", file), []);
    assert.equal((await mountPointsUnder("/s", file)).length, 2003);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
