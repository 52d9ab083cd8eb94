import assert from "node:assert/strict";
import { link, mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import { execFileSync } from "node:child_process";
import { BerthError, Code } from "./errdefs.ts";
import { directoryUsage } from "./disk-usage.ts";

it("counts blocks and inodes of a tree once per hard-linked inode", async () => {
  const root = await mkdtemp(join(tmpdir(), "berth-du-"));
  try {
    await mkdir(join(root, "a/b/c"), { recursive: true });
    await writeFile(join(root, "a/big"), Buffer.alloc(256 * 1024, 1));
    await writeFile(join(root, "a/b/c/small"), "x");
    await link(join(root, "a/big"), join(root, "a/b/big-link"));
    const u = await directoryUsage(root, { concurrency: 2 });
    assert.equal(u.inodes, 6n); // root, a, b, c, big, small (link counted once)
    let expect = 0n;
    for (const p of ["", "a", "a/b", "a/b/c", "a/big", "a/b/c/small"]) expect += (await stat(join(root, p), { bigint: true })).blocks * 512n;
    assert.equal(u.bytes, expect);
    assert.ok(u.bytes >= 256n * 1024n);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

it("fails with not found for a missing directory", async () => {
  await assert.rejects(directoryUsage("/nonexistent/berth-du"), (e: unknown) => e instanceof BerthError && e.code === Code.NOT_FOUND);
});

it("counts a missing directory as empty when asked to", async () => {
  assert.deepEqual(await directoryUsage("/nonexistent/berth-du", { missingOk: true }), { bytes: 0n, inodes: 0n });
});

it("does not cross a mount below the root", async () => {
  const root = await mkdtemp(join(tmpdir(), "berth-du-"));
  const mnt = join(root, "mnt");
  try {
    await mkdir(mnt);
    await writeFile(join(root, "f"), "x");
    const before = await directoryUsage(root);
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=4m", "berth-du-test", mnt]);
    try {
      await writeFile(join(mnt, "big"), Buffer.alloc(1024 * 1024, 1));
      const after = await directoryUsage(root);
      assert.equal(after.inodes, before.inodes - 1n, "the mount point (another filesystem's root) and all below it are skipped, like du -x");
      assert.ok(after.bytes <= before.bytes, `the tmpfs's 1 MiB file is not counted (${after.bytes} bytes)`);
      assert.ok((await directoryUsage(mnt)).bytes >= 1024n * 1024n, "walked from inside, the tmpfs counts");
    } finally {
      execFileSync("umount", [mnt]);
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
