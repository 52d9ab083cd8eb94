// Chooses the seccomp filter of a container or pod from the CRI's fields: the structured SecurityProfile,
// the legacy seccomp_profile_path string, the privileged flag and berth's configured default.

import { isAbsolute } from "node:path";
import type { Seccomp } from "../bundle-spec/types.ts";
import { invalidArgument } from "../foundation/errdefs.ts";
import { loadLocalhostProfile } from "./profile-loader.ts";
import { runtimeDefaultProfile } from "./runtime-default.ts";

/** CRI SecurityProfile.ProfileType values. */
export const ProfileType = { RuntimeDefault: 0, Unconfined: 1, Localhost: 2 } as const;
export type ProfileTypeName = keyof typeof ProfileType;

/** Mirrors CRI's SecurityProfile; the generated proto message fits this shape. */
export interface SecurityProfileInput {
  profileType?: number | ProfileTypeName;
  localhostRef?: string;
}

/** A profile choice after normalisation. */
export type ProfileChoice = { type: "RuntimeDefault" } | { type: "Unconfined" } | { type: "Localhost"; path: string };

const LOCALHOST_PREFIX = "localhost/";

/** Reads a structured profile; `field` names it in errors ("seccomp", "apparmor"). */
export function profileFromStructured(p: SecurityProfileInput, field: string, requireAbsolute: boolean): ProfileChoice {
  const raw = p.profileType ?? 0;
  const type = typeof raw === "number" ? (Object.keys(ProfileType) as ProfileTypeName[]).find((k) => ProfileType[k] === raw) : raw;
  if (!type || !(type in ProfileType)) throw invalidArgument(`${field}: unknown profile type ${JSON.stringify(raw)}`);
  const ref = p.localhostRef ?? "";
  if (type !== "Localhost") {
    if (ref) throw invalidArgument(`${field}: localhost_ref "${ref}" is only allowed with profile type Localhost`);
    return { type };
  }
  const path = ref.startsWith(LOCALHOST_PREFIX) ? ref.slice(LOCALHOST_PREFIX.length) : ref;
  if (!path) throw invalidArgument(`${field}: profile type Localhost requires localhost_ref`);
  if (requireAbsolute && !isAbsolute(path)) throw invalidArgument(`${field}: localhost_ref "${ref}" must be an absolute path`);
  return { type: "Localhost", path };
}

/** Reads a legacy profile string: runtime/default, docker/default, unconfined, localhost/<path>. "" is undefined. */
export function profileFromLegacy(s: string, field: string, requireAbsolute: boolean): ProfileChoice | undefined {
  switch (s) {
    case "": return undefined;
    case "runtime/default": case "docker/default": return { type: "RuntimeDefault" };
    case "unconfined": return { type: "Unconfined" };
  }
  if (!s.startsWith(LOCALHOST_PREFIX)) {
    throw invalidArgument(`${field}: invalid profile "${s}" (want runtime/default, docker/default, unconfined or localhost/<path>)`);
  }
  return profileFromStructured({ profileType: "Localhost", localhostRef: s }, field, requireAbsolute);
}

export interface SeccompChoiceInput {
  /** CRI `seccomp` (wins when present). */
  profile?: SecurityProfileInput | undefined;
  /** CRI `seccomp_profile_path` (deprecated). */
  legacyPath?: string | undefined;
  /** berth config runtime.seccomp_default: "" (unconfined), "RuntimeDefault" or "Unconfined". */
  configDefault?: string | undefined;
}

/** Which seccomp profile applies, before privileged is considered; undefined means none was asked for. */
export function chooseSeccomp(input: SeccompChoiceInput): ProfileChoice | undefined {
  if (input.profile) return profileFromStructured(input.profile, "seccomp", true);
  const legacy = profileFromLegacy(input.legacyPath ?? "", "seccomp_profile_path", true);
  if (legacy) return legacy;
  switch (input.configDefault ?? "") {
    case "": return undefined;
    case "RuntimeDefault": case "runtime/default": case "docker/default": return { type: "RuntimeDefault" };
    case "Unconfined": case "unconfined": return { type: "Unconfined" };
    default: throw invalidArgument(`runtime.seccomp_default: unknown profile "${input.configDefault}"`);
  }
}

export interface ResolveSeccompInput extends SeccompChoiceInput {
  privileged?: boolean | undefined;
  /** The container's bounding capabilities (with or without CAP_). */
  capabilities: readonly string[];
  arch?: string | undefined;
  kernel?: string | undefined;
}

/** The OCI linux.seccomp for a container, or undefined for none (unconfined, privileged, nothing asked). */
export async function resolveSeccomp(input: ResolveSeccompInput): Promise<Seccomp | undefined> {
  const choice = chooseSeccomp(input);
  if (input.privileged || !choice || choice.type === "Unconfined") return undefined;
  const opts = {
    capabilities: input.capabilities,
    ...(input.arch ? { arch: input.arch } : {}),
    ...(input.kernel ? { kernel: input.kernel } : {}),
  };
  if (choice.type === "RuntimeDefault") return runtimeDefaultProfile(opts);
  return loadLocalhostProfile(choice.path, opts);
}
