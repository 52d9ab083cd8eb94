// registry.max_concurrent_downloads over the real socket: a berthd pulls a three-layer image
// through a counting proxy that holds each blob GET until one more than the limit are in flight
// or 700 ms have passed, so the downloads the limit allows overlap, and one more would show.
// (The limit is berthd's, for all pulls together; one pull shows it.)
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startBerthd } from "../lib/berthd.ts";
import { startRegistry, type RunningRegistry } from "../../hack/registry/registry.ts";
import { type Fixtures, pushFixtures } from "../../hack/registry/build-images.ts";
import { startProxy, type RunningProxy } from "../../hack/registry/proxy.ts";

describe("registry.max_concurrent_downloads bounds berthd's layer downloads", () => {
  let reg: RunningRegistry;
  let fx: Fixtures;
  const proxies: RunningProxy[] = [];
  before(async () => {
    reg = await startRegistry();
    fx = await pushFixtures({ address: reg.address });
  });
  after(async () => {
    for (const p of proxies) await p.stop();
    await reg?.stop();
  });

  for (const limit of [1, 2, 3]) test(`at most ${limit} at once`, async () => {
    const layers = fx.multi.image.blobs.filter((x) => x.digest !== fx.multi.configDigest);
    assert.equal(layers.length, 3, "the image has three layers");
    const p = await startProxy({ upstream: reg.address, blobHold: { until: limit + 1, maxMs: 700 } });
    proxies.push(p);
    const b = await startBerthd({ toml: `[registry]\nmax_concurrent_downloads = ${limit}\n` });
    try {
      const { imageRef } = await b.client.image.pullImage({ image: { image: `${p.address}/${fx.multi.repo}:latest` } });
      assert.equal(imageRef, fx.multi.configDigest);
      for (const l of layers) assert.equal(p.blobGets(l.digest), 1, `layer ${l.digest} fetched once`);
      // The config blob is fetched before any layer, alone; then the layers, `limit` at a time.
      assert.equal(p.peakBlobGets(), limit);
    } finally {
      await b.cleanup();
    }
  });
});
