import { test } from "node:test";
import assert from "node:assert/strict";
import { matchesPinned, pinnedGlobProblem } from "./pinned.ts";

const img = { id: "sha256:" + "a".repeat(64), repoTags: ["registry.k8s.io/pause:3.10"], repoDigests: ["registry.k8s.io/pause@sha256:" + "b".repeat(64)] };

test("globs match tags, digests and the id", () => {
  assert.equal(matchesPinned(img, []), false);
  assert.equal(matchesPinned(img, ["registry.k8s.io/pause:3.10"]), true, "exact");
  assert.equal(matchesPinned(img, ["registry.k8s.io/pause:*"]), true, "trailing *");
  assert.equal(matchesPinned(img, ["*pause*"]), true, "keyword");
  assert.equal(matchesPinned(img, ["registry.k8s.io/pause:3.1?"]), true, "?");
  assert.equal(matchesPinned(img, ["registry.k8s.io/pause@sha256:*"]), true, "digest");
  assert.equal(matchesPinned(img, [img.id]), true, "id");
  assert.equal(matchesPinned(img, ["registry.k8s.io/pause:3.1"]), false, "whole name only");
  assert.equal(matchesPinned(img, ["registry.k8s.io/pause.3.10"]), false, "'.' is literal");
  assert.equal(matchesPinned(img, ["docker.io/*"]), false);
});

test("unusable globs are named", () => {
  assert.match(pinnedGlobProblem("")!, /empty/);
  assert.match(pinnedGlobProblem("a b")!, /spaces/);
  assert.match(pinnedGlobProblem("x".repeat(513))!, /longer than 512/);
  assert.equal(pinnedGlobProblem("docker.io/library/*"), undefined);
});
