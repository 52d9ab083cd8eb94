// The Linux security fields of the CRI, turned into spec options. resolve*() validates everything and
// reads what it needs from the host (profile files, /dev, AppArmor state) and throws INVALID_ARGUMENT
// before anything is created; apply*() edits a spec with the result; with*() does both.

import type { LinuxDevice, Mount, Seccomp, Spec, SpecOpt } from "../bundle-spec/types.ts";
import { invalidArgument } from "../foundation/errdefs.ts";
import { chooseSeccomp, resolveSeccomp, type SecurityProfileInput } from "../seccomp/resolve.ts";
import { computeCapabilities, hostCapabilities, toOciCapabilities, type CapabilityInput, type CapabilitySets } from "./capabilities.ts";
import { maskedAndReadonlyPaths } from "./paths.ts";
import { hostDevices } from "./host-devices.ts";
import { appArmorEnabled, loadedAppArmorProfiles, resolveAppArmor } from "./apparmor.ts";

/** Mirrors CRI's SELinuxOption. Accepted and not applied (berth does not label processes). */
export interface SELinuxOptionsInput { user?: string; role?: string; type?: string; level?: string }

/** Facts about the host; each is detected when not given (tests inject them). */
export interface HostSecurity {
  /** Capabilities "ALL" and privileged mean; default: berthd's bounding set. */
  capabilities?: readonly string[];
  /** Architecture for the seccomp profile; default: this host's. */
  arch?: string;
  /** Kernel release for the seccomp profile; default os.release(). */
  kernel?: string;
  appArmorEnabled?: boolean;
  appArmorProfiles?: () => Promise<ReadonlySet<string>>;
  /** Profile RuntimeDefault stands for when AppArmor is enabled; "" applies none. */
  appArmorDefault?: string;
  /** Device nodes a privileged container gets; default: walk /dev. */
  devices?: () => Promise<LinuxDevice[]>;
}

/** Mirrors CRI's LinuxContainerSecurityContext (the generated message fits), plus what the caller knows. */
export interface ContainerSecurityInput {
  privileged?: boolean;
  capabilities?: CapabilityInput | undefined;
  noNewPrivs?: boolean;
  readonlyRootfs?: boolean;
  seccomp?: SecurityProfileInput | undefined;
  seccompProfilePath?: string;
  apparmor?: SecurityProfileInput | undefined;
  apparmorProfile?: string;
  /** Non-empty: replaces the defaults. Empty or absent: the defaults (proto3 cannot tell the two apart). */
  maskedPaths?: readonly string[];
  readonlyPaths?: readonly string[];
  selinuxOptions?: SELinuxOptionsInput | undefined;
  /** The pod's LinuxSandboxSecurityContext.privileged; a privileged container needs a privileged pod. */
  podPrivileged?: boolean;
  /**
   * The uid the process will run as (after run_as_user / run_as_username / the image user). Informational:
   * the spec is the same for root and non-root; the kernel drops a non-root process's capabilities at
   * execve unless they are ambient, which is what Kubernetes expects.
   */
  uid?: number;
  /** berth config runtime.seccomp_default, used when neither seccomp field is set. */
  seccompDefault?: string;
  host?: HostSecurity;
}

/** Mirrors CRI's LinuxSandboxSecurityContext, for the pod's infra container. */
export interface SandboxSecurityInput {
  privileged?: boolean;
  readonlyRootfs?: boolean;
  seccomp?: SecurityProfileInput | undefined;
  seccompProfilePath?: string;
  apparmor?: SecurityProfileInput | undefined;
  selinuxOptions?: SELinuxOptionsInput | undefined;
  seccompDefault?: string;
  host?: HostSecurity;
}

/** Everything a spec needs, decided and validated. */
export interface ResolvedSecurity {
  privileged: boolean;
  capabilities: CapabilitySets;
  noNewPrivileges: boolean;
  readonlyRootfs: boolean;
  apparmorProfile: string | undefined;
  seccomp: Seccomp | undefined;
  maskedPaths: string[];
  readonlyPaths: string[];
  /** Privileged only: host devices to add, and all devices allowed in the device cgroup. */
  hostDevices: LinuxDevice[] | undefined;
}

/** Validates and decides a container's security settings; throws INVALID_ARGUMENT naming the bad field. */
export async function resolveSecurityContext(input: ContainerSecurityInput): Promise<ResolvedSecurity> {
  const host = input.host ?? {};
  const privileged = input.privileged ?? false;
  if (privileged && !input.podPrivileged) {
    throw invalidArgument("privileged container is not allowed in a non-privileged pod sandbox (set privileged on the pod's security context)");
  }
  const capabilities = computeCapabilities({
    capabilities: input.capabilities, privileged, hostCapabilities: host.capabilities ?? hostCapabilities(),
  });
  // Validate the seccomp choice even when privileged ignores it, so a malformed request fails the same way.
  chooseSeccomp({ profile: input.seccomp, legacyPath: input.seccompProfilePath, configDefault: input.seccompDefault });
  const seccomp = await resolveSeccomp({
    profile: input.seccomp, legacyPath: input.seccompProfilePath, configDefault: input.seccompDefault,
    privileged, capabilities: capabilities.bounding, arch: host.arch, kernel: host.kernel,
  });
  const apparmorProfile = await resolveAppArmor({
    apparmor: input.apparmor, apparmorProfile: input.apparmorProfile, privileged,
    enabled: host.appArmorEnabled ?? appArmorEnabled(), defaultProfile: host.appArmorDefault,
    loadedProfiles: host.appArmorProfiles ?? loadedAppArmorProfiles,
  });
  const paths = maskedAndReadonlyPaths({ privileged, maskedPaths: input.maskedPaths, readonlyPaths: input.readonlyPaths });
  return {
    privileged, capabilities, seccomp, apparmorProfile, ...paths,
    noNewPrivileges: input.noNewPrivs ?? false,
    readonlyRootfs: input.readonlyRootfs ?? false,
    hostDevices: privileged ? await (host.devices ?? hostDevices)() : undefined,
  };
}

/** The infra container: default capabilities, no_new_privs, default masked paths, the pod's seccomp. */
export async function resolveSandboxSecurityContext(input: SandboxSecurityInput): Promise<ResolvedSecurity> {
  const host = input.host ?? {};
  const privileged = input.privileged ?? false;
  const capabilities = computeCapabilities({ privileged, hostCapabilities: host.capabilities ?? hostCapabilities() });
  const seccomp = await resolveSeccomp({
    profile: input.seccomp, legacyPath: input.seccompProfilePath, configDefault: input.seccompDefault,
    privileged, capabilities: capabilities.bounding, arch: host.arch, kernel: host.kernel,
  });
  const apparmorProfile = await resolveAppArmor({
    apparmor: input.apparmor, privileged, enabled: host.appArmorEnabled ?? appArmorEnabled(),
    defaultProfile: host.appArmorDefault, loadedProfiles: host.appArmorProfiles ?? loadedAppArmorProfiles,
  });
  return {
    privileged, capabilities, seccomp, apparmorProfile, ...maskedAndReadonlyPaths({ privileged }),
    noNewPrivileges: true, readonlyRootfs: input.readonlyRootfs ?? false, hostDevices: undefined,
  };
}

/** sysfs and cgroup mounts become writable (privileged). */
function writableSysAndCgroup(mounts: Mount[] | undefined): void {
  for (const m of mounts ?? []) {
    if (m.type !== "sysfs" && m.type !== "cgroup" && m.type !== "cgroup2") continue;
    if (!m.options) continue;
    m.options = m.options.map((o) => (o === "ro" ? "rw" : o));
  }
}

function addDevices(spec: Spec, devices: LinuxDevice[]): void {
  const linux = (spec.linux ??= {});
  const have = new Set((linux.devices ?? []).map((d) => d.path));
  linux.devices = [...(linux.devices ?? []), ...devices.filter((d) => !have.has(d.path))];
  const resources = (linux.resources ??= {});
  resources.devices = [{ allow: true, access: "rwm" }];
}

/** Writes resolved settings into a spec. */
export function applySecurityContext(r: ResolvedSecurity): SpecOpt<unknown> {
  return (spec) => {
    if (!spec.process) throw invalidArgument("spec has no process to apply the security context to");
    spec.process.capabilities = toOciCapabilities(r.capabilities);
    spec.process.noNewPrivileges = r.noNewPrivileges;
    if (r.apparmorProfile) spec.process.apparmorProfile = r.apparmorProfile;
    else delete spec.process.apparmorProfile;
    const linux = (spec.linux ??= {});
    if (r.seccomp) linux.seccomp = structuredClone(r.seccomp);
    else delete linux.seccomp;
    linux.maskedPaths = [...r.maskedPaths];
    linux.readonlyPaths = [...r.readonlyPaths];
    if (r.readonlyRootfs) spec.root = { ...(spec.root ?? { path: "rootfs" }), readonly: true };
    if (r.privileged) {
      writableSysAndCgroup(spec.mounts);
      addDevices(spec, r.hostDevices ?? []);
    }
  };
}

/** Resolves then applies a container's security context (errors come before the spec is touched). */
export function withSecurityContext(input: ContainerSecurityInput): SpecOpt<unknown> {
  return async (spec, ctx) => applySecurityContext(await resolveSecurityContext(input))(spec, ctx);
}

/** Resolves then applies the infra container's security context. */
export function withSandboxSecurityContext(input: SandboxSecurityInput): SpecOpt<unknown> {
  return async (spec, ctx) => applySecurityContext(await resolveSandboxSecurityContext(input))(spec, ctx);
}
