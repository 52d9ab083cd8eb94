import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import {
  ImageFsInfoRequestSchema, ImageStatusRequestSchema, ListImagesRequestSchema, PullImageRequestSchema, RemoveImageRequestSchema,
} from "../../proto/gen/runtime/v1/api_pb.js";
import { BerthError, Code } from "../../oci-runtime/foundation/errdefs.ts";
import type { Image, ImageService, PullAuth } from "../../image-service/image-service.ts";
import { imageFsInfo } from "./image-fs-info.ts";
import { imageList } from "./image-list.ts";
import { imagePull } from "./image-pull.ts";
import { imageRemove } from "./image-remove.ts";
import { imageStatus } from "./image-status.ts";

const img: Image = {
  id: "sha256:" + "c".repeat(64), repoTags: ["docker.io/library/busybox:latest"], repoDigests: ["docker.io/library/busybox@sha256:" + "d".repeat(64)],
  size: 1234, uid: 1003, username: "", pinned: true, config: { User: "1003:users" },
  configFile: { architecture: "amd64", os: "linux", config: { User: "1003:users" }, rootfs: { type: "layers", diff_ids: [] } },
  manifestDigest: "sha256:" + "d".repeat(64), manifestMediaType: "application/vnd.oci.image.manifest.v1+json",
  layers: [], blobs: [], chainIds: [], pulledAt: "2024-01-01T00:00:00Z",
};

function fake() {
  const calls: { pulled: [string, PullAuth | undefined][]; removed: string[] } = { pulled: [], removed: [] };
  const images = {
    pull: async (ref: string, auth?: PullAuth) => { calls.pulled.push([ref, auth]); return { imageRef: img.id }; },
    get: (ref: string) => (ref === "busybox" || ref === img.id ? img : undefined),
    list: (filter?: string) => (filter ? (filter === "busybox" ? [img] : []) : [img, { ...img, id: "sha256:" + "e".repeat(64), uid: undefined, username: "www-data" }]),
    remove: async (ref: string) => { calls.removed.push(ref); },
    fsInfo: async () => ({ mountpoint: "/var/lib/berth", usedBytes: 10, inodesUsed: 2, timestamp: 5 }),
  };
  return { ctx: { images: images as unknown as ImageService }, calls };
}

describe("image rpc handlers", () => {
  it("PullImage passes the AuthConfig and answers the image id", async () => {
    const { ctx, calls } = fake();
    const res = await imagePull(ctx, create(PullImageRequestSchema, { image: { image: "busybox" }, auth: { username: "u", password: "p" } }));
    assert.equal(res.imageRef, img.id);
    assert.equal(calls.pulled[0]![0], "busybox");
    assert.equal(calls.pulled[0]![1]!.username, "u");
    assert.equal(calls.pulled[0]![1]!.password, "p");
    await assert.rejects(imagePull(ctx, create(PullImageRequestSchema, {})), (e: BerthError) => e.code === Code.INVALID_ARGUMENT);
  });

  it("ImageStatus answers empty for unknown images and adds info when verbose", async () => {
    const { ctx } = fake();
    assert.deepEqual(await imageStatus(ctx, create(ImageStatusRequestSchema, { image: { image: "nope" } })), {});
    const plain = await imageStatus(ctx, create(ImageStatusRequestSchema, { image: { image: "busybox" } }));
    assert.equal(plain.image?.id, img.id);
    assert.equal(plain.image?.uid?.value, 1003n);
    assert.equal(plain.image?.pinned, true);
    assert.deepEqual(plain.info, {});
    const verbose = await imageStatus(ctx, create(ImageStatusRequestSchema, { image: { image: "busybox" }, verbose: true }));
    const info = JSON.parse(verbose.info!.info!) as { imageSpec: { config: { User: string } } };
    assert.equal(info.imageSpec.config.User, "1003:users");
  });

  it("ListImages filters and maps usernames", async () => {
    const { ctx } = fake();
    const all = await imageList(ctx, create(ListImagesRequestSchema, {}));
    assert.equal(all.images!.length, 2);
    assert.equal(all.images![1]!.username, "www-data");
    assert.equal(all.images![1]!.uid, undefined);
    assert.equal((await imageList(ctx, create(ListImagesRequestSchema, { filter: { image: { image: "busybox" } } }))).images!.length, 1);
    assert.equal((await imageList(ctx, create(ListImagesRequestSchema, { filter: { image: { image: "other" } } }))).images!.length, 0);
  });

  it("RemoveImage delegates (unknown images succeed in the service)", async () => {
    const { ctx, calls } = fake();
    await imageRemove(ctx, create(RemoveImageRequestSchema, { image: { image: "gone" } }));
    assert.deepEqual(calls.removed, ["gone"]);
  });

  it("ImageFsInfo reports the image filesystem", async () => {
    const { ctx } = fake();
    const res = await imageFsInfo(ctx, create(ImageFsInfoRequestSchema, {}));
    const fs = res.imageFilesystems![0]!;
    assert.equal(fs.fsId?.mountpoint, "/var/lib/berth");
    assert.equal(fs.usedBytes?.value, 10n);
    assert.equal(fs.inodesUsed?.value, 2n);
    assert.equal(fs.timestamp, 5_000_000n);
  });
});
