// Capability sets of a container process from the CRI's add/drop lists, with containerd's rules:
// start from the default set; "ALL" in add gives every capability the host has, "ALL" in drop clears the
// set, then single adds, then single drops are applied (add [ALL] + drop [CHOWN] = everything but CHOWN;
// drop [ALL] + add [NET_ADMIN] = only NET_ADMIN). Privileged gets every host capability.
// Ambient capabilities are cleared (a non-root process then keeps no capabilities across execve, as
// Kubernetes expects) unless add_ambient_capabilities asks for some.

import { readFileSync } from "node:fs";
import type { Capabilities } from "../bundle-spec/types.ts";
import { invalidArgument } from "../foundation/errdefs.ts";
import { ALL_CAPABILITIES, DEFAULT_CAPABILITIES, canonicalCapability, capabilitiesFromMask } from "./capability-names.ts";

/** Mirrors CRI's Capability message. */
export interface CapabilityInput {
  addCapabilities?: readonly string[];
  dropCapabilities?: readonly string[];
  addAmbientCapabilities?: readonly string[];
}

export interface CapabilitySets {
  bounding: string[];
  effective: string[];
  permitted: string[];
  inheritable: string[];
  ambient: string[];
}

let hostCaps: string[] | undefined;

/** The capabilities this host lets a process hold (berthd's own bounding set). */
export function hostCapabilities(): string[] {
  if (!hostCaps) {
    const status = readFileSync("/proc/self/status", "utf8");
    const m = /^CapBnd:\s*([0-9a-f]+)$/m.exec(status);
    hostCaps = m ? capabilitiesFromMask(m[1]!) : [...ALL_CAPABILITIES];
  }
  return [...hostCaps];
}

const isAll = (c: string): boolean => c.trim().toUpperCase() === "ALL";

/** Canonical names of a CRI list; "ALL" is kept aside. Unknown names are invalid argument. */
function canonicalList(list: readonly string[] | undefined, field: string, allowAll: boolean): { all: boolean; caps: string[] } {
  const caps: string[] = [];
  let all = false;
  for (const c of list ?? []) {
    if (allowAll && isAll(c)) { all = true; continue; }
    const name = canonicalCapability(c);
    if (!name) throw invalidArgument(`unknown capability "${c}" in capabilities.${field}`);
    if (!caps.includes(name)) caps.push(name);
  }
  return { all, caps };
}

/** Throws invalid argument for an unknown capability name anywhere in the input. */
export function validateCapabilities(input: CapabilityInput | undefined): void {
  canonicalList(input?.addCapabilities, "add_capabilities", true);
  canonicalList(input?.dropCapabilities, "drop_capabilities", true);
  canonicalList(input?.addAmbientCapabilities, "add_ambient_capabilities", false);
}

export interface CapabilityOptions {
  capabilities?: CapabilityInput | undefined;
  privileged?: boolean | undefined;
  /** Capabilities "ALL" and privileged stand for; default hostCapabilities(). */
  hostCapabilities?: readonly string[];
}

export function computeCapabilities(opts: CapabilityOptions): CapabilitySets {
  const add = canonicalList(opts.capabilities?.addCapabilities, "add_capabilities", true);
  const drop = canonicalList(opts.capabilities?.dropCapabilities, "drop_capabilities", true);
  const ambient = canonicalList(opts.capabilities?.addAmbientCapabilities, "add_ambient_capabilities", false).caps;
  const host = opts.hostCapabilities ?? hostCapabilities();

  let set: string[] = [...DEFAULT_CAPABILITIES];
  if (opts.privileged) {
    set = [...host];
  } else {
    if (add.all) set = [...host];
    if (drop.all) set = [];
    for (const c of add.caps) if (!set.includes(c)) set.push(c);
    set = set.filter((c) => !drop.caps.includes(c));
  }
  for (const c of ambient) if (!set.includes(c)) set.push(c);
  return { bounding: [...set], effective: [...set], permitted: [...set], inheritable: [...ambient], ambient: [...ambient] };
}

/** As OCI process.capabilities. */
export const toOciCapabilities = (s: CapabilitySets): Capabilities => ({
  bounding: [...s.bounding], effective: [...s.effective], permitted: [...s.permitted],
  inheritable: [...s.inheritable], ambient: [...s.ambient],
});
