// seccomp-profiles: berth's RuntimeDefault profile, Localhost profile loading, and CRI profile resolution.
export { runtimeDefaultProfile, type RuntimeDefaultOptions } from "./runtime-default.ts";
export { loadLocalhostProfile, parseProfile, type ProfileOptions } from "./profile-loader.ts";
export {
  resolveSeccomp, chooseSeccomp, profileFromLegacy, profileFromStructured, ProfileType,
  type ProfileChoice, type ResolveSeccompInput, type SecurityProfileInput,
} from "./resolve.ts";
export { hostArch, nativeArch, archFamily } from "./arch.ts";
export { RUNTIME_DEFAULT_RULES } from "./default-profile.ts";
