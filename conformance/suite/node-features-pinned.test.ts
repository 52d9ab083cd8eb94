// image.pinned_images: images whose tag, digest or id matches a glob are reported pinned by
// ListImages and ImageStatus (kubelet's image GC then leaves them alone); bad globs stop berthd.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startBerthd, type Berthd } from "../lib/berthd.ts";
import { startTestImages, type TestImages } from "../lib/images.ts";

describe("pinned images", () => {
  let images: TestImages;
  let b: Berthd;
  before(async () => {
    images = await startTestImages();
    b = await startBerthd({ toml: `[registry]\nconfig_path = "${images.hostsDir}"\n[image]\npinned_images = ["*/berth-test/busybox:*", "nothing-matches/*"]\n` });
    for (const image of [images.busybox, images.entrypoint]) await b.client.image.pullImage({ image: { image } });
  });
  after(async () => {
    await b?.cleanup();
    await images?.stop();
  });

  test("ListImages and ImageStatus report matching images pinned, others not", async () => {
    const list = await b.client.image.listImages({});
    const byTag = new Map(list.images.flatMap((i) => i.repoTags.map((t) => [t, i.pinned] as const)));
    assert.equal(byTag.get(images.busybox), true, "busybox matches */berth-test/busybox:*");
    assert.equal(byTag.get(images.entrypoint), false, "entrypoint matches no glob");
    assert.equal((await b.client.image.imageStatus({ image: { image: images.busybox } })).image?.pinned, true);
    const st = await b.client.image.imageStatus({ image: { image: images.entrypoint }, verbose: true });
    assert.equal(st.image?.pinned, false);
    assert.equal(JSON.parse(st.info["info"]!).pinned, false);
    const filtered = await b.client.image.listImages({ filter: { image: { image: images.busybox } } });
    assert.deepEqual(filtered.images.map((i) => i.pinned), [true]);
  });

  test("a bad glob stops berthd naming the key and the entry", async () => {
    const dir = await mkdtemp(join(tmpdir(), "berth-t-pinned-"));
    try {
      await assert.rejects(startBerthd({ dir, toml: `[image]\npinned_images = ["has space"]\n` }), (e) => {
        assert.match((e as Error).message, /image\.pinned_images.*"has space".*must not contain spaces/s);
        return true;
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
