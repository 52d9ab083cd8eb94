// Docker references as the containers-policy.json(5) rules see them: scopes (the identity and
// its parent namespaces) and the signedIdentity matchers. Unlike a pull reference, a signed
// identity keeps "no tag" as "no tag" (a name-only reference matches nothing exact).
import { type Reference, isHostName, parseReference, repoName } from "../reference.ts";

/** A normalised reference: name is host/path; tag and digest only when written. */
export interface IdentityRef { name: string; tag?: string; digest?: string }

/** Parses `s` without defaulting the tag; undefined when it is not a valid reference. */
export function parseIdentity(s: string): IdentityRef | undefined {
  if (typeof s !== "string" || s.length === 0 || s.length > 4096) return undefined;
  let r: Reference;
  try { r = parseReference(s); } catch { return undefined; }
  const beforeDigest = s.split("@")[0]!;
  const lastSlash = beforeDigest.lastIndexOf("/");
  const hasTag = beforeDigest.slice(lastSlash + 1).includes(":");
  return { name: repoName(r), ...(hasTag && r.tag ? { tag: r.tag } : {}), ...(r.digest ? { digest: r.digest } : {}) };
}

export const formatIdentity = (r: IdentityRef) => r.name + (r.tag ? `:${r.tag}` : "") + (r.digest ? `@${r.digest}` : "");

/** The reference a pull asks for, as an IdentityRef (a digest wins over a tag, as in containers/image). */
export function pullIdentity(r: Reference): IdentityRef {
  return r.digest ? { name: repoName(r), digest: r.digest } : { name: repoName(r), ...(r.tag ? { tag: r.tag } : {}) };
}

/**
 * Scopes to look up, most specific first: the exact reference, the repository, each parent
 * namespace up to the registry host, then `*.domain` wildcards of the host (port removed).
 */
export function scopeCandidates(r: Reference): string[] {
  const id = pullIdentity(r);
  const out = [formatIdentity(id)];
  let name = id.name;
  for (;;) {
    out.push(name);
    const i = name.lastIndexOf("/");
    if (i < 0) break;
    name = name.slice(0, i);
  }
  let host = name.replace(/:\d+$/, "");
  for (let dot = host.indexOf("."); dot >= 0; dot = host.indexOf(".")) {
    host = host.slice(dot + 1);
    out.push(`*.${host}`);
  }
  return out;
}

/** Why a scope string is not usable, or undefined when it is (canonical form only). */
export function scopeProblem(scope: string): string | undefined {
  if (scope === "") return undefined;
  if (scope.startsWith("*.")) {
    const rest = scope.slice(2);
    return rest && !rest.includes("/") && !rest.includes(":") && isHostName(rest) ? undefined : "is not a valid wildcard domain (*.example.com)";
  }
  if (!scope.includes("/")) return isHostName(scope) ? undefined : "is not a valid registry host";
  const id = parseIdentity(scope);
  if (!id) return "is not a valid image reference";
  if (formatIdentity(id) !== scope) return `is not in canonical form (use ${JSON.stringify(formatIdentity(id))})`;
  if (id.tag && id.digest) return "names both a tag and a digest";
  return undefined;
}

export type SignedIdentity =
  | { type: "matchExact" }
  | { type: "matchRepoDigestOrExact" }
  | { type: "matchRepository" }
  | { type: "exactReference"; dockerReference: string }
  | { type: "exactRepository"; dockerRepository: string }
  | { type: "remapIdentity"; prefix: string; signedPrefix: string };

/** containers/image's prefix rule: the prefix ends at a component boundary. */
function refMatchesPrefix(ref: string, prefix: string): boolean {
  if (ref.length < prefix.length) return false;
  if (ref.length === prefix.length) return ref === prefix;
  if (!ref.startsWith(prefix)) return false;
  const c = ref[prefix.length];
  return c === ":" || c === "/" || c === "@";
}

function repoDigestOrExact(intended: IdentityRef, signed: IdentityRef): boolean {
  if (intended.digest) return signed.name === intended.name;
  if (intended.tag) return formatIdentity(signed) === formatIdentity(intended);
  return false;
}

/** Whether a signature claiming `signed` is acceptable for a pull of `intended` under `rule`. */
export function identityMatches(rule: SignedIdentity, intended: IdentityRef, signed: IdentityRef): boolean {
  switch (rule.type) {
    case "matchExact":
      return !!(intended.tag || intended.digest) && !!(signed.tag || signed.digest) && formatIdentity(signed) === formatIdentity(intended);
    case "matchRepoDigestOrExact":
      return repoDigestOrExact(intended, signed);
    case "matchRepository":
      return signed.name === intended.name;
    case "exactReference": {
      const want = parseIdentity(rule.dockerReference);
      return !!want && formatIdentity(signed) === formatIdentity(want);
    }
    case "exactRepository": {
      const want = parseIdentity(rule.dockerRepository);
      return !!want && signed.name === want.name;
    }
    case "remapIdentity": {
      let mapped = intended;
      if (refMatchesPrefix(intended.name, rule.prefix)) {
        const renamed = parseIdentity(rule.signedPrefix + intended.name.slice(rule.prefix.length));
        if (!renamed) return false;
        mapped = { name: renamed.name, ...(intended.tag ? { tag: intended.tag } : {}), ...(intended.digest ? { digest: intended.digest } : {}) };
      }
      return repoDigestOrExact(mapped, signed);
    }
  }
}
