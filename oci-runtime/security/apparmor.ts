// AppArmor: which profile (if any) a container process runs under.
// Host with AppArmor: Localhost names a loaded profile (refused when it is not loaded); RuntimeDefault (or
// nothing) uses the configured default profile when one is set and loaded; Unconfined uses none.
// Host without AppArmor: a Localhost profile is refused with a clear message; RuntimeDefault and Unconfined
// are no-ops.

import { readFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { invalidArgument } from "../foundation/errdefs.ts";
import { profileFromLegacy, profileFromStructured, type SecurityProfileInput } from "../seccomp/resolve.ts";

const ENABLED_PATH = "/sys/module/apparmor/parameters/enabled";
const PROFILES_PATH = "/sys/kernel/security/apparmor/profiles";

/** True when the kernel has AppArmor enabled (the same test critest and containerd make). */
export function appArmorEnabled(path = ENABLED_PATH): boolean {
  try {
    return readFileSync(path, "utf8").startsWith("Y");
  } catch {
    return false;
  }
}

/** Names of the profiles loaded in the kernel. */
export async function loadedAppArmorProfiles(path = PROFILES_PATH): Promise<Set<string>> {
  let text = "";
  try {
    text = await readFile(path, "utf8");
  } catch {
    return new Set();
  }
  // lines look like "docker-default (enforce)"
  return new Set(text.split("\n").filter(Boolean).map((l) => l.replace(/ \([^)]*\)$/, "")));
}

export interface AppArmorInput {
  /** CRI `apparmor` (wins when present). */
  apparmor?: SecurityProfileInput | undefined;
  /** CRI `apparmor_profile` (deprecated): runtime/default, unconfined, localhost/<name>. */
  apparmorProfile?: string | undefined;
  privileged?: boolean | undefined;
  /** Whether the host has AppArmor; default appArmorEnabled(). */
  enabled?: boolean;
  /** Profile RuntimeDefault stands for on an AppArmor host; "" or unset applies none. */
  defaultProfile?: string | undefined;
  /** Loaded profile names; default read from securityfs. */
  loadedProfiles?: () => Promise<ReadonlySet<string>>;
}

/** The process.apparmorProfile value, or undefined for none. */
export async function resolveAppArmor(input: AppArmorInput): Promise<string | undefined> {
  const choice = input.apparmor
    ? profileFromStructured(input.apparmor, "apparmor", false)
    : profileFromLegacy(input.apparmorProfile ?? "", "apparmor_profile", false);
  const enabled = input.enabled ?? appArmorEnabled();
  const loaded = input.loadedProfiles ?? loadedAppArmorProfiles;
  if (!enabled) {
    if (choice?.type === "Localhost") {
      throw invalidArgument(`apparmor profile "${choice.path}" cannot be applied: apparmor is not enabled on this host`);
    }
    return undefined;
  }
  const type = choice?.type ?? "RuntimeDefault";
  if (type === "Unconfined") return undefined;
  if (type === "RuntimeDefault") {
    if (input.privileged || !input.defaultProfile) return undefined;
    return (await loaded()).has(input.defaultProfile) ? input.defaultProfile : undefined;
  }
  const name = (choice as { path: string }).path;
  if (!(await loaded()).has(name)) throw invalidArgument(`apparmor profile "${name}" is not loaded`);
  return name;
}
