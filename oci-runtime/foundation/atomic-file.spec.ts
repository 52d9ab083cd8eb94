import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, stat, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeFileAtomic, writeJsonAtomic } from "./atomic-file.ts";

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await mkdtemp(join(tmpdir(), "berth-atomic-"));
  try { await fn(dir); } finally { await rm(dir, { recursive: true, force: true }); }
}

test("writeFileAtomic replaces the content and leaves no temp file", () => withDir(async (dir) => {
  const file = join(dir, "a.txt");
  await writeFileAtomic(file, "one");
  await writeFileAtomic(file, new TextEncoder().encode("two"));
  assert.equal(await readFile(file, "utf8"), "two");
  assert.deepEqual(await readdir(dir), ["a.txt"]);
}));

test("writeFileAtomic creates a new file 0600 by default and with the mode given", () => withDir(async (dir) => {
  const prev = process.umask(0o022);
  try {
    await writeFileAtomic(join(dir, "private"), "x");
    await writeFileAtomic(join(dir, "public"), "x", 0o644);
  } finally { process.umask(prev); }
  assert.equal((await stat(join(dir, "private"))).mode & 0o777, 0o600);
  assert.equal((await stat(join(dir, "public"))).mode & 0o777, 0o644);
}));

test("writeFileAtomic creates missing parent directories", () => withDir(async (dir) => {
  const file = join(dir, "x", "y", "z.json");
  await writeFileAtomic(file, "{}");
  assert.equal(await readFile(file, "utf8"), "{}");
}));

test("writeFileAtomic removes its temp file when the rename fails", () => withDir(async (dir) => {
  const target = join(dir, "target");
  await mkdir(join(target, "child"), { recursive: true }); // rename over a non-empty directory fails
  await assert.rejects(writeFileAtomic(target, "x"), (err: NodeJS.ErrnoException) => err.code === "EISDIR" || err.code === "ENOTEMPTY" || err.code === "EEXIST");
  assert.deepEqual(await readdir(dir), ["target"]);
}));

test("writeJsonAtomic writes indented JSON with a trailing newline", () => withDir(async (dir) => {
  const file = join(dir, "r.json");
  await writeJsonAtomic(file, { a: 1 });
  assert.equal(await readFile(file, "utf8"), '{\n "a": 1\n}\n');
  assert.equal((await stat(file)).mode & 0o777, 0o600);
}));
