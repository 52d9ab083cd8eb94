import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { BoundedReadError, readBoundedFile } from "./bounded-file.ts";

const dir = mkdtempSync(join(tmpdir(), "berth-bounded-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const problem = (kind: string, re: RegExp) => (e: unknown) => e instanceof BoundedReadError && e.problem.kind === kind && re.test(e.message);

test("reads a regular file up to the limit, refuses one over it", async () => {
  const p = join(dir, "f");
  writeFileSync(p, "x".repeat(100));
  assert.equal((await readBoundedFile(p, 100)).length, 100);
  await assert.rejects(readBoundedFile(p, 99), problem("too-large", /is 100 bytes, over the limit of 99 bytes/));
  writeFileSync(join(dir, "empty"), "");
  assert.equal((await readBoundedFile(join(dir, "empty"), 10)).length, 0);
});

test("a /proc file (fstat size 0, content larger) is still bounded", async () => {
  assert.ok((await readBoundedFile("/proc/self/status", 1 << 20)).toString().includes("VmRSS"));
  await assert.rejects(readBoundedFile("/proc/self/status", 10), problem("too-large", /over the limit of 10 bytes/));
});

test("fifos, devices and directories are refused at once; a missing file says so", async () => {
  const fifo = join(dir, "fifo");
  execFileSync("mkfifo", [fifo]);
  const t0 = Date.now();
  await assert.rejects(readBoundedFile(fifo, 10), problem("not-regular", /a fifo; it must be a regular file/));
  await assert.rejects(readBoundedFile("/dev/zero", 10), problem("not-regular", /a device/));
  mkdirSync(join(dir, "d"));
  await assert.rejects(readBoundedFile(join(dir, "d"), 10), problem("not-regular", /EISDIR: a directory/));
  assert.ok(Date.now() - t0 < 2000);
  await assert.rejects(readBoundedFile(join(dir, "nope"), 10), problem("missing", /does not exist/));
});
