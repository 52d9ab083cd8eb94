import { test } from "node:test";
import assert from "node:assert/strict";
import { Code } from "../oci-runtime/foundation/errdefs.ts";
import { checkFetched, pullError } from "./pull-process.ts";

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
