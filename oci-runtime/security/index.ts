// Security contexts: capabilities, privileged, no_new_privs, masked/read-only paths, AppArmor, seccomp.
export {
  withSecurityContext, withSandboxSecurityContext, resolveSecurityContext, resolveSandboxSecurityContext,
  applySecurityContext,
  type ContainerSecurityInput, type SandboxSecurityInput, type ResolvedSecurity, type HostSecurity, type SELinuxOptionsInput,
} from "./security-context.ts";
export { computeCapabilities, validateCapabilities, hostCapabilities, type CapabilityInput, type CapabilitySets } from "./capabilities.ts";
export { ALL_CAPABILITIES, DEFAULT_CAPABILITIES, canonicalCapability, capabilityMask } from "./capability-names.ts";
export { DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS, maskedAndReadonlyPaths } from "./paths.ts";
export { hostDevices } from "./host-devices.ts";
export { appArmorEnabled, resolveAppArmor } from "./apparmor.ts";
