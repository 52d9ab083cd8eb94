import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { type Image, ImageStore } from "./image-store.ts";
import { LeaseStore } from "./leases.ts";

const img = (c: string): Image => ({
  id: "sha256:" + c.repeat(64), repoTags: [`r/${c}:latest`], repoDigests: [], size: 1, username: "", pinned: false, config: {},
  configFile: { rootfs: { type: "layers", diff_ids: [] } }, manifestDigest: "", manifestMediaType: "", layers: [], blobs: [], chainIds: [], pulledAt: "",
});

describe("ImageStore and LeaseStore", () => {
  it("persist records across instances and set corrupt ones aside", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "berth-store-"));
    try {
      const a = new ImageStore(path.join(dir, "images"));
      await a.init();
      await a.put(img("a"));
      await a.put(img("b"));
      await a.delete("sha256:" + "b".repeat(64));
      await writeFile(path.join(dir, "images", "c".repeat(64) + ".json"), "{broken");
      await writeFile(path.join(dir, "images", ".x.json.1234.tmp"), "partial");
      const b = new ImageStore(path.join(dir, "images"));
      await b.init();
      assert.deepEqual(b.list().map((i) => i.repoTags[0]), ["r/a:latest"]);
      assert.deepEqual((await readdir(path.join(dir, "images"))).sort(), ["a".repeat(64) + ".json", "c".repeat(64) + ".json.corrupt"]);
      const l = new LeaseStore(path.join(dir, "leases"));
      await l.init();
      await l.put({ key: "ctr1", imageId: "x", chainIds: ["c1"] });
      const l2 = new LeaseStore(path.join(dir, "leases"));
      await l2.init();
      assert.deepEqual(l2.get("ctr1"), { key: "ctr1", imageId: "x", chainIds: ["c1"] });
      await l2.delete("ctr1");
      assert.deepEqual(await readdir(path.join(dir, "leases")), []);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
