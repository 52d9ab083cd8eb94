// The berth-trim.node addon hack/build-helpers.sh installs, loaded into this process.
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmod, copyFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { loadMallocTrim } from "./malloc-trim.ts";

const INSTALLED = "/usr/local/libexec/berth/berth-trim.node";

test("the installed addon loads and trims this process's heap", () => {
  const trim = loadMallocTrim(INSTALLED);
  assert.equal(typeof trim, "function", JSON.stringify(trim));
  assert.equal(typeof (trim as () => boolean)(), "boolean");
});

test("a missing file, a file others may write, a directory and a file that is no addon are refused with the reason", async () => {
  const dir = await mkdtemp(path.join(tmpdir(), "berth-trim-"));
  try {
    assert.match((loadMallocTrim(path.join(dir, "none.node")) as { unavailable: string }).unavailable, /ENOENT/);
    const writable = path.join(dir, "writable.node");
    await copyFile(INSTALLED, writable);
    await chmod(writable, 0o666);
    assert.match((loadMallocTrim(writable) as { unavailable: string }).unavailable, /owned by root and writable by it alone \(uid 0, mode 666\)/);
    const notAddon = path.join(dir, "text.node");
    await writeFile(notAddon, "not a shared object\n", { mode: 0o644 });
    assert.match((loadMallocTrim(notAddon) as { unavailable: string }).unavailable, /text\.node/);
    assert.match((loadMallocTrim(dir) as { unavailable: string }).unavailable, /not a regular file/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
