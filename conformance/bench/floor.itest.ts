// The node floor the bench prints beside berthd's memory: a real node process, bundled and run.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { REPO } from "../lib/berthd.ts";
import { berthdMallocTunables, berthdV8Flags, bundleFlags, measureFloor } from "./floor.ts";
import { FLOOR_BUILTINS } from "./floor-builtins.ts";

test("berthdV8Flags: bin/berthd's default, or BERTHD_V8_FLAGS as bin/berthd reads it", () => {
  const flags = berthdV8Flags({});
  for (const f of ["--max-semi-space-size=1", "--max-opt=0", "--optimize-for-size"]) assert.ok(flags.includes(f), `flags: ${flags.join(" ")}`);
  assert.deepEqual(berthdV8Flags({ BERTHD_V8_FLAGS: "" }), []);
  assert.deepEqual(berthdV8Flags({ BERTHD_V8_FLAGS: " --max-opt=0  --jitless " }), ["--max-opt=0", "--jitless"]);
});

test("berthdMallocTunables: bin/berthd's default, or BERTHD_MALLOC_TUNABLES as bin/berthd reads it", () => {
  assert.equal(berthdMallocTunables({}), "glibc.malloc.mmap_threshold=131072");
  assert.equal(berthdMallocTunables({ BERTHD_MALLOC_TUNABLES: "" }), "");
  assert.equal(berthdMallocTunables({ BERTHD_MALLOC_TUNABLES: "glibc.malloc.arena_max=1" }), "glibc.malloc.arena_max=1");
});

test("bundleFlags: hack/build.sh's bundle=(...) line, as its esbuild call uses it", () => {
  const flags = bundleFlags();
  for (const f of ["--bundle", "--platform=node", "--format=esm"]) assert.ok(flags.includes(f), `flags: ${flags.join(" ")}`);
  assert.match(readFileSync(join(REPO, "hack", "build.sh"), "utf8"), /esbuild [^\n]*\\\n\s*"\$\{bundle\[@\]\}"/);
});

test("measureFloor runs the floor program with the flags and reads its memory", async () => {
  mkdirSync(join(REPO, ".bench"), { recursive: true });
  const dir = mkdtempSync(join(REPO, ".bench", "floor-test-"));
  try {
    const floor = await measureFloor(dir, ["--max-semi-space-size=1"]);
    assert.deepEqual(floor.flags, ["--max-semi-space-size=1"]);
    assert.equal(floor.tunables, [berthdMallocTunables(), process.env["GLIBC_TUNABLES"]].filter(Boolean).join(":"), "the program ran with bin/berthd's malloc tunables");
    const second = join(dir, "second"); // the first program's socket stays behind it (SIGKILL)
    mkdirSync(second);
    const plain = await measureFloor(second, ["--max-semi-space-size=1"], "");
    assert.equal(plain.tunables, process.env["GLIBC_TUNABLES"] ?? "", "and without them when there are none");
    assert.ok(floor.schemas > 100, `the whole CRI api was loaded: ${floor.schemas} exports`);
    assert.ok(floor.rss > 0 && floor.pss > 0 && floor.pssAnon > 0, JSON.stringify(floor));
    assert.ok(floor.pss <= floor.rss && floor.pssAnon <= floor.pss, JSON.stringify(floor));
    await assert.rejects(measureFloor(dir, ["--no-such-v8-flag-here"]), /exited/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the floor loads the built-ins berthd's bundle (main.js and the chunks it imports) takes at load", () => {
  mkdirSync(join(REPO, ".bench"), { recursive: true });
  const parent = mkdtempSync(join(REPO, ".bench", "floor-build-"));
  try {
    const out = join(parent, "dist");
    const r = spawnSync("bash", [join(REPO, "hack", "build.sh"), out], { cwd: REPO, encoding: "utf8", timeout: 300_000 });
    assert.equal(r.status, 0, `hack/build.sh failed: ${r.stdout}${r.stderr}`);
    const text = (f: string) => readFileSync(join(out, "cri-server", f), "utf8");
    const atLoad = new Set<string>();
    const seen = new Set<string>();
    const visit = (f: string) => {
      if (seen.has(f)) return;
      seen.add(f);
      for (const m of text(f).matchAll(/\bfrom\s*"([@a-z.][A-Za-z0-9@/._:-]*)"/g)) {
        if (m[1]!.startsWith("./")) visit(m[1]!.slice(2));
        else if (m[1]!.startsWith("node:")) atLoad.add(m[1]!);
      }
    };
    visit("main.js");
    assert.ok(seen.size > 1, "main.js imports chunks");
    assert.deepEqual([...atLoad].sort(), [...FLOOR_BUILTINS].sort());
  } finally {
    rmSync(parent, { recursive: true, force: true });
  }
});
