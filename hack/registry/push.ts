// Pushes blobs and manifests to a registry with plain HTTP (test registries on loopback).
import type { Blob, BuiltImage } from "./oci-image.ts";

export interface PushTarget { address: string; auth?: { username: string; password: string } }

const authHeader = (t: PushTarget): Record<string, string> =>
  t.auth ? { authorization: "Basic " + Buffer.from(`${t.auth.username}:${t.auth.password}`).toString("base64") } : {};

export async function pushBlob(t: PushTarget, repo: string, blob: Blob) {
  const base = `http://${t.address}/v2/${repo}`;
  const head = await fetch(`${base}/blobs/${blob.digest}`, { method: "HEAD", headers: authHeader(t) });
  if (head.status === 200) return;
  const start = await fetch(`${base}/blobs/uploads/`, { method: "POST", headers: authHeader(t) });
  if (start.status !== 202) throw new Error(`push ${repo}: starting upload of ${blob.digest} answered ${start.status}`);
  const loc = new URL(start.headers.get("location")!, `http://${t.address}`);
  loc.searchParams.set("digest", blob.digest);
  const put = await fetch(loc, { method: "PUT", headers: { ...authHeader(t), "content-type": "application/octet-stream" }, body: new Uint8Array(blob.data) });
  if (put.status !== 201) throw new Error(`push ${repo}: upload of ${blob.digest} answered ${put.status}: ${await put.text()}`);
}

export async function pushManifest(t: PushTarget, repo: string, ref: string, m: Blob) {
  const res = await fetch(`http://${t.address}/v2/${repo}/manifests/${ref}`, {
    method: "PUT", headers: { ...authHeader(t), "content-type": m.mediaType }, body: new Uint8Array(m.data),
  });
  if (res.status !== 201) throw new Error(`push ${repo}:${ref}: manifest answered ${res.status}: ${await res.text()}`);
}

/** Pushes an image's blobs and manifest, tagged `tag` (also reachable by digest). */
export async function pushImage(t: PushTarget, repo: string, tag: string, img: BuiltImage) {
  for (const b of img.blobs) await pushBlob(t, repo, b);
  await pushManifest(t, repo, tag, img.manifest);
}
