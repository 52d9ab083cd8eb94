import { test } from "node:test";
import assert from "node:assert/strict";
import { Code } from "../oci-runtime/foundation/errdefs.ts";
import { checkFetched, checkHold, MAX_HELD_PER_PULL, pullError } from "./pull-process.ts";

const d = (c: string) => `sha256:${c.repeat(64)}`;
const layer = { digest: d("1"), size: 10, mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", diffId: d("2"), chainId: d("2") };
const image = {
  id: d("a"), repoTags: ["evil/other:latest"], repoDigests: ["evil/other@" + d("f")], pinned: true, size: 10, config: {}, configFile: {},
  manifestDigest: d("b"), manifestMediaType: "application/vnd.oci.image.manifest.v1+json", layers: [layer], blobs: [d("b"), d("a"), d("1")], chainIds: [d("2")], pulledAt: "x",
};

test("checkFetched: names and the pinned flag are berthd's, whatever the process said", () => {
  const f = checkFetched({ kind: "fetched", topDigest: d("b"), image }, undefined);
  assert.ok(f.kind === "fetched");
  assert.deepEqual([f.image.repoTags, f.image.repoDigests, f.image.pinned], [[], [], false]);
  assert.equal(f.image.id, d("a"));
});

test("checkFetched: malformed answers are refused", () => {
  const bad: unknown[] = [
    undefined, null, 7, "x", {}, { kind: "other" },
    { kind: "fetched", topDigest: "sha256:short", image },
    { kind: "fetched", topDigest: d("b"), image: { ...image, id: "../../etc" } },
    { kind: "fetched", topDigest: d("b"), image: { ...image, chainIds: ["../x"] } },
    { kind: "fetched", topDigest: d("b"), image: { ...image, blobs: [d("a"), 5] } },
    { kind: "fetched", topDigest: d("b"), image: { ...image, layers: [{ ...layer, chainId: "/" }] } },
    { kind: "fetched", topDigest: d("b"), image: { ...image, layers: [{ ...layer, size: "10" }] } },
    { kind: "fetched", topDigest: d("b"), image: { ...image, layers: "x" } },
    { kind: "fetched", topDigest: d("b"), image: { ...image, manifestDigest: "x" } },
  ];
  for (const b of bad) assert.throws(() => checkFetched(b, undefined), (e: Error & { code?: number }) => e.code === Code.UNAVAILABLE && /malformed image record/.test(e.message), JSON.stringify(b)?.slice(0, 80));
});

test("checkFetched: a 'present' answer must name the image berthd said was here", () => {
  const have = { id: d("a"), chainIds: [d("2")] };
  assert.deepEqual(checkFetched({ kind: "present", id: d("a"), extra: 1 }, have), { kind: "present", id: d("a") });
  assert.throws(() => checkFetched({ kind: "present", id: d("c") }, have), /malformed/);
  assert.throws(() => checkFetched({ kind: "present", id: d("a") }, undefined), /malformed/);
});

test("pullError: the process's code and message; OK and unknown codes become INTERNAL; bounded", () => {
  const e = pullError({ code: Code.FAILED_PRECONDITION, message: "layer refused", cause: "why" });
  assert.equal(e.code, Code.FAILED_PRECONDITION);
  assert.equal(e.message, "layer refused");
  assert.equal((e.cause as Error).message, "why");
  assert.equal(pullError({ code: Code.OK, message: "x" }).code, Code.INTERNAL);
  assert.equal(pullError({ code: 99 as never, message: "x" }).code, Code.INTERNAL);
  assert.equal(pullError({ code: Code.UNAVAILABLE, message: "m".repeat(100_000) }).message.length, 4096);
});

test("checkHold: digests only, a list, within the bound counting what the pull holds already", () => {
  assert.deepEqual(checkHold([d("a"), d("b")], 0), [d("a"), d("b")]);
  assert.deepEqual(checkHold([], MAX_HELD_PER_PULL), []);
  assert.equal(checkHold("x", 0), "the keys are not a list");
  assert.equal(checkHold({ length: 1, 0: d("a") }, 0), "the keys are not a list");
  assert.equal(checkHold([d("a"), "sha256:../../x"], 0), `"sha256:../../x" is not a sha256 digest`);
  assert.equal(checkHold([7], 0), `"7" is not a sha256 digest`);
  assert.equal(checkHold([`sha256:${"A".repeat(64)}`], 0), `"sha256:${"A".repeat(64)}" is not a sha256 digest`);
  assert.equal(checkHold([d("a")], MAX_HELD_PER_PULL), `a pull may hold at most ${MAX_HELD_PER_PULL} blobs and layers, asked for ${MAX_HELD_PER_PULL + 1}`);
  assert.match(checkHold(["x".repeat(10_000)], 0) as string, /^"x{80}" is not/, "the refused key is cut short in the message");
});
