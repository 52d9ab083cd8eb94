import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findExecutable } from "./executable.ts";

test("findExecutable: the first executable regular file on the path, skipping empty entries, directories and plain files", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "berth-exe-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const [a, b, c] = ["a", "b", "c"].map((n) => join(dir, n));
  for (const d of [a, b, c]) mkdirSync(d!);
  writeFileSync(join(a!, "tool"), "not executable", { mode: 0o644 });
  mkdirSync(join(b!, "tool")); // a directory is searchable (X_OK) but not a program
  writeFileSync(join(c!, "tool"), "#!/bin/sh\n", { mode: 0o755 });
  chmodSync(join(c!, "tool"), 0o755);
  assert.equal(findExecutable("tool", `::${a}:${b}:/nonexistent:${c}`), join(c!, "tool"));
  assert.equal(findExecutable("tool", `${a}:${b}`), undefined);
  assert.equal(findExecutable("sh", "/nonexistent:/bin"), "/bin/sh");
  assert.equal(findExecutable("passwd", "/etc"), undefined, "/etc/passwd is not executable");
  assert.equal(findExecutable("", "/bin"), undefined);
});

test("findExecutable: a name with a slash is checked as given, never searched", () => {
  assert.equal(findExecutable("/bin/sh", "/nonexistent"), "/bin/sh");
  assert.equal(findExecutable("/etc/passwd"), undefined);
  assert.equal(findExecutable("/bin"), undefined, "a directory");
  assert.equal(findExecutable("bin/sh", "/"), undefined, "relative names with a slash are not looked up on PATH");
});
