// Pinned images: config image.pinned_images holds globs ("*" any run of characters, "?" one)
// matched against an image's tags, digests and id; a match is reported pinned so kubelet's
// image garbage collection leaves the image alone.
import type { Image } from "./image-store.ts";

export const MAX_PINNED_GLOBS = 256;
export const MAX_PINNED_GLOB_LEN = 512;

/** Why `glob` is not a usable pattern, or undefined. */
export function pinnedGlobProblem(glob: string): string | undefined {
  if (!glob) return "must not be empty";
  if (glob.length > MAX_PINNED_GLOB_LEN) return `is longer than ${MAX_PINNED_GLOB_LEN} characters`;
  if (/[\s\0-\x1f\x7f]/.test(glob)) return "must not contain spaces or control characters";
  return undefined;
}

const toRegExp = (glob: string) =>
  new RegExp("^" + [...glob].map((c) => c === "*" ? ".*" : c === "?" ? "." : c.replace(/[.+^${}()|[\]\\]/g, "\\$&")).join("") + "$", "s");

const compiled = new Map<string, RegExp[]>();

/** Whether any of `globs` matches one of the image's tags, digests or its id. */
export function matchesPinned(img: Pick<Image, "id" | "repoTags" | "repoDigests">, globs: readonly string[]): boolean {
  if (!globs.length) return false;
  const key = globs.join("\n");
  let res = compiled.get(key);
  if (!res) {
    res = globs.slice(0, MAX_PINNED_GLOBS).filter((g) => !pinnedGlobProblem(g)).map(toRegExp);
    if (compiled.size > 16) compiled.clear();
    compiled.set(key, res);
  }
  const names = [...img.repoTags, ...img.repoDigests, img.id];
  return res.some((re) => names.some((n) => re.test(n)));
}
