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
// *.test.ts) may reach anything and are not checked.
//
// Rooms inside cri-server/: CNI networking (network/), streaming (streaming/) and stats
// (stats/) import only the floors below (foundation, proto, oci-runtime, image-service) and
// their own room, never the lifecycle code (container/, sandbox/, runtime/) nor each other;
// what they need of pods and containers is a narrow interface the daemon passes in.
//
// Test-only code lives in one place, conformance/lib/: a production-floor file that only
// test files import is test code in the wrong place.
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

export const isTestFile = (rel: string) => /\.(spec|itest|test)\.ts$/.test(rel);

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

export const ROOMS = ["cri-server/network/", "cri-server/streaming/", "cri-server/stats/"];

/** Imports out of a room to anything of cri-server/ but the room itself, as "from -> to" lines. */
export function roomViolations(files: { rel: string; text: string }[]): string[] {
  const bad: string[] = [];
  for (const { rel, text } of files) {
    if (isTestFile(rel)) continue;
    const room = ROOMS.find((r) => rel.startsWith(r));
    if (!room) continue;
    for (const target of importsOf(rel, text)) {
      if (target.startsWith("cri-server/") && !target.startsWith(room)) bad.push(`${rel} (room ${room}) -> ${target}`);
    }
  }
  return bad;
}

/**
 * Non-test files of floors 0-3 that are imported, and only by test files, other than by
 * their own `<name>.spec.ts`/`<name>.itest.ts` (a unit with its own tests that nothing wires
 * in yet is not a helper): test helpers outside conformance/lib/.
 */
export function strayTestHelpers(files: { rel: string; text: string }[]): string[] {
  const importers = new Map<string, string[]>();
  for (const { rel, text } of files) {
    for (const target of importsOf(rel, text)) importers.set(target, [...(importers.get(target) ?? []), rel]);
  }
  return files.map((f) => f.rel).filter((rel) => {
    const floor = floorOf(rel);
    if (!floor || floor.floor > 3 || isTestFile(rel)) return false;
    const by = importers.get(rel) ?? [];
    const ownTests = [".spec.ts", ".itest.ts"].map((ext) => rel.replace(/\.ts$/, ext));
    return by.length > 0 && by.every(isTestFile) && !by.some((f) => ownTests.includes(f));
  });
}

function berthSources(): { rel: string; text: string }[] {
  const listed = execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard", "*.ts"], { cwd: REPO, encoding: "utf8" })
    .split("\n").filter((f) => f && !f.startsWith("node_modules/") && !f.startsWith("proto/gen/"));
  // --cached also lists files deleted in the work tree but not yet in the index.
  const files = listed.filter((rel) => existsSync(path.join(REPO, rel))).map((rel) => ({ rel, text: readFileSync(path.join(REPO, rel), "utf8") }));
  assert.ok(files.length > 100, `expected berth's sources, found ${files.length} files`);
  return files;
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
  assert.deepEqual(violations(berthSources()), []);
});

test("rooms: a fixture reaching from network or streaming into the lifecycle code is caught", () => {
  const files = [
    { rel: "cri-server/network/a.ts", text: `import { b } from "./cni.ts";\nimport { c } from "../../oci-runtime/foundation/log.ts";\nimport type { S } from "../sandbox/sandbox-manager.ts";` },
    { rel: "cri-server/streaming/b.ts", text: `import type { Context } from "../context.ts";\nimport { x } from "./spdy/frames.ts";\nimport "../../proto/gen/runtime/v1/api_pb.js";` },
    { rel: "cri-server/stats/c.ts", text: `const m = await import("../network/netns.ts");\nimport "../../image-service/image-service.ts";` },
    { rel: "cri-server/streaming/d.spec.ts", text: `import "../container/container-manager.ts";` },
    { rel: "cri-server/sandbox/e.ts", text: `import "../network/cni.ts";` },
  ];
  assert.deepEqual(roomViolations(files), [
    "cri-server/network/a.ts (room cri-server/network/) -> cri-server/sandbox/sandbox-manager.ts",
    "cri-server/streaming/b.ts (room cri-server/streaming/) -> cri-server/context.ts",
    "cri-server/stats/c.ts (room cri-server/stats/) -> cri-server/network/netns.ts",
  ]);
});

test("rooms: network, streaming and stats import only the floors below and themselves", () => {
  const files = berthSources();
  for (const room of ROOMS) assert.ok(files.some((f) => f.rel.startsWith(room) && !isTestFile(f.rel)), `room ${room} has no sources`);
  assert.deepEqual(roomViolations(files), []);
});

test("test code: a fixture helper imported only by tests is caught outside conformance/lib/", () => {
  const files = [
    { rel: "oci-runtime/io/harness.ts", text: `export const h = 1;` },
    { rel: "oci-runtime/io/x.itest.ts", text: `import { h } from "./harness.ts";\nimport { y } from "./y.ts";` },
    { rel: "oci-runtime/io/y.ts", text: `export const y = 1;` },
    { rel: "oci-runtime/io/z.ts", text: `import { y } from "./y.ts";` },
    { rel: "oci-runtime/io/unwired.ts", text: `export const u = 1;` },
    { rel: "oci-runtime/io/unwired.spec.ts", text: `import { u } from "./unwired.ts";` },
    { rel: "conformance/lib/helper.ts", text: `export const g = 1;` },
    { rel: "cri-server/q.spec.ts", text: `import { g } from "../conformance/lib/helper.ts";` },
  ];
  assert.deepEqual(strayTestHelpers(files), ["oci-runtime/io/harness.ts"]);
});

test("test code: every test-only helper lives in conformance/lib/", () => {
  assert.deepEqual(strayTestHelpers(berthSources()), []);
});
