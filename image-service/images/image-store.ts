// Image metadata: one crash-safe JSON record per image under <root>/<id-hex>.json, kept in memory.
import { rm } from "node:fs/promises";
import path from "node:path";
import { writeJsonAtomic } from "../../oci-runtime/foundation/atomic-file.ts";
import { loadRecords } from "./records.ts";

/** The runtime-relevant part of an OCI image config. */
export interface ImageConfig {
  User?: string;
  ExposedPorts?: Record<string, object>;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Volumes?: Record<string, object> | null;
  WorkingDir?: string;
  Labels?: Record<string, string> | null;
  StopSignal?: string;
}

export interface OciImageConfigFile {
  architecture?: string;
  os?: string;
  variant?: string;
  created?: string;
  author?: string;
  config?: ImageConfig;
  rootfs: { type: string; diff_ids: string[] };
  history?: unknown[];
}

export interface ImageLayer { digest: string; size: number; mediaType: string; diffId: string; chainId: string }

export interface Image {
  /** The config digest, "sha256:<hex>". */
  id: string;
  repoTags: string[];
  repoDigests: string[];
  /** Bytes of the image's content (manifest, config and compressed layers). */
  size: number;
  uid?: number;
  username: string;
  pinned: boolean;
  /** Parsed config section (Env, Cmd, Entrypoint, User, WorkingDir, StopSignal, Volumes, Labels). */
  config: ImageConfig;
  /** The whole OCI image config document. */
  configFile: OciImageConfigFile;
  manifestDigest: string;
  manifestMediaType: string;
  layers: ImageLayer[];
  /** Every content digest this image keeps (index, manifest, config, layers). */
  blobs: string[];
  /** Chain ids of the layers, bottom first. */
  chainIds: string[];
  pulledAt: string;
}

export class ImageStore {
  readonly dir: string;
  #images = new Map<string, Image>();
  constructor(dir: string) { this.dir = dir; }

  async init() {
    for (const img of await loadRecords<Image>(this.dir, (n) => /^[a-f0-9]{64}\.json$/.test(n))) this.#images.set(img.id, img);
  }

  #file(id: string) { return path.join(this.dir, `${id.replace(/^sha256:/, "")}.json`); }

  get(id: string) { return this.#images.get(id); }
  list(): Image[] { return [...this.#images.values()]; }

  async put(img: Image) {
    await writeJsonAtomic(this.#file(img.id), img);
    this.#images.set(img.id, img);
  }

  async delete(id: string) {
    this.#images.delete(id);
    await rm(this.#file(id), { force: true });
  }
}
