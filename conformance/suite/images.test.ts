// The image service over the real socket, pulling from a loopback registry.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startBerthd, type Berthd } from "../lib/berthd.ts";
import { codeOf, grpc } from "../lib/cri-client.ts";
import { startTestImages, type TestImages } from "../lib/images.ts";

describe("image service", () => {
  let b: Berthd;
  let imgs: TestImages;
  before(async () => {
    imgs = await startTestImages();
    b = await startBerthd({ toml: `[registry]\nconfig_path = "${imgs.hostsDir}"\n` });
  });
  after(async () => {
    await b.cleanup();
    await imgs.stop();
  });

  test("PullImage by tag answers the image id; ImageStatus and ListImages show it", async () => {
    const c = b.client.image;
    const { imageRef } = await c.pullImage({ image: { image: imgs.busybox } });
    assert.match(imageRef, /^sha256:[0-9a-f]{64}$/);
    const st = await c.imageStatus({ image: { image: imgs.busybox }, verbose: true });
    assert.equal(st.image?.id, imageRef);
    assert.deepEqual(st.image?.repoTags, [imgs.busybox]);
    assert.equal(st.image?.repoDigests.length, 1);
    assert.match(st.image!.repoDigests[0]!, /@sha256:[0-9a-f]{64}$/);
    assert.ok(st.image!.size > 500_000n, "size counts the layers");
    assert.ok(JSON.parse(st.info["info"]!).imageSpec, "verbose adds the config");
    // By id and by digest too.
    assert.equal((await c.imageStatus({ image: { image: imageRef } })).image?.id, imageRef);
    assert.equal((await c.imageStatus({ image: { image: st.image!.repoDigests[0]! } })).image?.id, imageRef);
    const list = await c.listImages({});
    assert.ok(list.images.some((i) => i.id === imageRef));
    const filtered = await c.listImages({ filter: { image: { image: imgs.busybox } } });
    assert.deepEqual(filtered.images.map((i) => i.id), [imageRef]);
  });

  test("the image user is reported as uid or username", async () => {
    const c = b.client.image;
    await c.pullImage({ image: { image: imgs.user } });
    const st = await c.imageStatus({ image: { image: imgs.user } });
    assert.equal(st.image?.username, "www-data");
    assert.equal(st.image?.uid, undefined);
  });

  test("pull by digest keeps the digest reference", async () => {
    const c = b.client.image;
    const st = await c.imageStatus({ image: { image: imgs.busybox } });
    const digestRef = st.image!.repoDigests[0]!;
    const { imageRef } = await c.pullImage({ image: { image: digestRef } });
    assert.equal(imageRef, st.image!.id);
  });

  test("unknown image: status is empty, remove succeeds; invalid references are INVALID_ARGUMENT naming them", async () => {
    const c = b.client.image;
    const st = await c.imageStatus({ image: { image: `${imgs.registry.address}/nope/nothing:1` } });
    assert.equal(st.image, undefined);
    await c.removeImage({ image: { image: `${imgs.registry.address}/nope/nothing:1` } });
    for (const bad of ["Busybox:latest", "a b", "busybox@sha256:123", "busybox:tag:extra"]) {
      await assert.rejects(c.pullImage({ image: { image: bad } }), (e) => {
        assert.equal(codeOf(e), grpc.status.INVALID_ARGUMENT, String(e));
        assert.ok((e as Error).message.includes(bad), `names ${bad}: ${(e as Error).message}`);
        return true;
      });
    }
    await assert.rejects(c.pullImage({ image: { image: `${imgs.registry.address}/nope/nothing:1` } }), (e) => codeOf(e) !== grpc.status.OK && /nope\/nothing/.test((e as Error).message));
  });

  test("ImageFsInfo reports the image filesystem", async () => {
    const fs = await b.client.image.imageFsInfo({});
    assert.equal(fs.imageFilesystems.length, 1);
    assert.ok(fs.imageFilesystems[0]!.usedBytes!.value > 0n);
    assert.ok(fs.imageFilesystems[0]!.inodesUsed!.value > 0n);
    assert.ok(fs.imageFilesystems[0]!.fsId!.mountpoint.startsWith(b.root));
  });

  test("images survive a restart; removing by tag removes the image", async () => {
    const c0 = b.client.image;
    const before0 = await c0.imageStatus({ image: { image: imgs.entrypoint } });
    assert.equal(before0.image, undefined);
    const { imageRef } = await c0.pullImage({ image: { image: imgs.entrypoint } });
    await b.kill9();
    await b.restart();
    const c = b.client.image;
    assert.equal((await c.imageStatus({ image: { image: imgs.entrypoint } })).image?.id, imageRef);
    await c.removeImage({ image: { image: imgs.entrypoint } });
    assert.equal((await c.imageStatus({ image: { image: imgs.entrypoint } })).image, undefined);
    assert.equal((await c.imageStatus({ image: { image: imageRef } })).image, undefined);
    // The busybox image shares its only layer and must still be complete.
    assert.ok((await c.imageStatus({ image: { image: imgs.busybox } })).image);
  });
});
