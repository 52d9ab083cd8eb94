// Image references: parse and normalise the docker/OCI reference grammar.
// `busybox` -> docker.io/library/busybox:latest; docker.io is served by registry-1.docker.io.
import { invalidArgument } from "../oci-runtime/foundation/errdefs.ts";

export const DEFAULT_DOMAIN = "docker.io";
export const DOCKER_REGISTRY_HOST = "registry-1.docker.io";

export interface Reference {
  /** Registry domain as written (after docker.io normalisation), e.g. "docker.io", "127.0.0.1:5000". */
  domain: string;
  /** Repository path inside the registry, e.g. "library/busybox". */
  path: string;
  tag?: string;
  digest?: string;
}

const component = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
const pathRe = new RegExp(`^${component}(?:/${component})*$`);
const tagRe = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const digestRe = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
const domainRe = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?$/;

export const isDigest = (s: string) => digestRe.test(s);

/** Whether `s` is a registry host as a reference writes it: a DNS name or [IPv6], with an optional port. */
export const isHostName = (s: string) => domainRe.test(s);

/** Parses and normalises a reference; throws INVALID_ARGUMENT naming it. */
export function parseReference(input: string): Reference {
  const bad = (why: string) => invalidArgument(`invalid image reference ${JSON.stringify(input)}: ${why}`);
  if (input === "" ) throw bad("empty");
  if (input.length > 4096) throw bad("too long");
  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!digestRe.test(digest)) throw bad("malformed digest");
  }
  let domain = DEFAULT_DOMAIN;
  const slash = rest.indexOf("/");
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes(".") || first.includes(":") || first === "localhost" || first !== first.toLowerCase()) {
      domain = first;
      rest = rest.slice(slash + 1);
      if (!domainRe.test(domain)) throw bad("malformed registry host");
    }
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(":");
  if (colon >= 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!tagRe.test(tag)) throw bad("malformed tag");
  }
  if (domain === "index.docker.io") domain = DEFAULT_DOMAIN;
  let path = rest;
  if (!pathRe.test(path)) throw bad(path !== path.toLowerCase() ? "repository name must be lowercase" : "malformed repository name");
  if (domain === DEFAULT_DOMAIN && !path.includes("/")) path = `library/${path}`;
  if (domain.length + 1 + path.length > 255) throw bad("repository name too long");
  if (!tag && !digest) tag = "latest";
  return { domain, path, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

/** "docker.io/library/busybox" */
export const repoName = (r: Reference) => `${r.domain}/${r.path}`;
/** The full normalised string: name[:tag][@digest]. */
export const formatReference = (r: Reference) => repoName(r) + (r.tag ? `:${r.tag}` : "") + (r.digest ? `@${r.digest}` : "");
/** The repoTag this reference records, if it names a tag and no digest. */
export const repoTag = (r: Reference) => (r.tag && !r.digest ? `${repoName(r)}:${r.tag}` : undefined);
/** A repoDigest for a manifest digest. */
export const repoDigest = (r: Reference, digest: string) => `${repoName(r)}@${digest}`;
/** The host that actually serves a registry domain by default. */
export const defaultRegistryHost = (domain: string) => (domain === DEFAULT_DOMAIN ? DOCKER_REGISTRY_HOST : domain);
