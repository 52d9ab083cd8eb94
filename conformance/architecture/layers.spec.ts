// berth's floors, read from the code's own imports. Every import of production code must
// point at the same floor or one below it:
//
//   4  conformance/, hack/        test suites, benchmarks, set-up and fixtures
//   3  cri-server/                the CRI surface (RPC modules, lifecycle, network, streaming)
//   2  image-service/             registry client, content store, snapshots, trust
//   1  oci-runtime/               spec building, runc/crun, conmon, seccomp, cgroups, mounts
//   0  oci-runtime/foundation/    typed errors, logging, atomic files, async primitives,
//      proto/                     child processes, mountinfo, clock; the generated CRI types
//
// The foundation imports nothing of berth but itself. Test files (*.spec.ts, *.itest.ts,
// *.test.ts, *.testutil.ts, test harnesses) may reach anything and are not checked.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

const REPO = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

export function floorOf(rel: string): { floor: number; room: string } | undefined {
  if (rel.startsWith("oci-runtime/foundation/")) return { floor: 0, room: "foundation" };
  if (rel.startsWith("proto/")) return { floor: 0, room: "proto" };
  if (rel.startsWith("oci-runtime/")) return { floor: 1, room: "oci-runtime" };
  if (rel.startsWith("image-service/")) return { floor: 2, room: "image-service" };
  if (rel.startsWith("cri-server/")) return { floor: 3, room: "cri-server" };
  if (rel.startsWith("conformance/")) return { floor: 4, room: "conformance" };
  if (rel.startsWith("hack/")) return { floor: 4, room: "hack" };
  return undefined;
}

export const isTestFile = (rel: string) =>
  /\.(spec|itest|test|testutil)\.ts$/.test(rel) || /(^|\/)(test-harness|itest-env)\.ts$/.test(rel);

const IMPORT = /(?:^|[\s;])(?:import|export)\s+(?:type\s+)?(?:[^"';]*?\sfrom\s+)?["'](\.{1,2}\/[^"']+)["']|import\(\s*["'](\.{1,2}\/[^"']+)["']\s*\)/g;

/** Relative imports of one source text, resolved against the importing file's path. */
export function importsOf(rel: string, text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2]!;
    out.push(path.posix.normalize(path.posix.join(path.posix.dirname(rel), spec)));
  }
  return out;
}

/** Every import that runs back up a floor, or out of the foundation, as "from -> to" lines. */
export function violations(files: { rel: string; text: string }[]): string[] {
  const bad: string[] = [];
  for (const { rel, text } of files) {
    if (isTestFile(rel)) continue;
    const from = floorOf(rel);
    if (!from) continue;
    for (const target of importsOf(rel, text)) {
      const to = floorOf(target);
      if (!to) continue;
      const upward = to.floor > from.floor;
      const outOfFoundation = from.room === "foundation" && to.room !== "foundation";
      const sideways = from.floor === to.floor && from.room !== to.room && from.floor < 4;
      if (upward || outOfFoundation || sideways) bad.push(`${rel} (floor ${from.floor}) -> ${target} (floor ${to.floor})`);
    }
  }
  return bad;
}

test("floors: a fixture with an upward import is caught, a downward one is not", () => {
  const files = [
    { rel: "oci-runtime/runtime/x.ts", text: `import { a } from "../../cri-server/errdefs.ts";\nimport { b } from "../foundation/log.ts";` },
    { rel: "oci-runtime/foundation/y.ts", text: `export { c } from "../bundle-spec/types.ts";` },
    { rel: "image-service/z.ts", text: `const m = await import("../cri-server/daemon.ts");` },
    { rel: "cri-server/w.ts", text: `import type { T } from "../image-service/z.ts";` },
    { rel: "image-service/z.spec.ts", text: `import "../cri-server/daemon.ts";` },
  ];
  assert.deepEqual(violations(files), [
    "oci-runtime/runtime/x.ts (floor 1) -> cri-server/errdefs.ts (floor 3)",
    "oci-runtime/foundation/y.ts (floor 0) -> oci-runtime/bundle-spec/types.ts (floor 1)",
    "image-service/z.ts (floor 2) -> cri-server/daemon.ts (floor 3)",
  ]);
});

test("floors: no import of berth's own code runs back up a floor", () => {
  const listed = execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard", "*.ts"], { cwd: REPO, encoding: "utf8" })
    .split("\n").filter((f) => f && !f.startsWith("node_modules/") && !f.startsWith("proto/gen/"));
  // --cached also lists files deleted in the work tree but not yet in the index.
  const files = listed.filter((rel) => existsSync(path.join(REPO, rel))).map((rel) => ({ rel, text: readFileSync(path.join(REPO, rel), "utf8") }));
  assert.ok(files.length > 100, `expected berth's sources, found ${files.length} files`);
  assert.deepEqual(violations(files), []);
});
