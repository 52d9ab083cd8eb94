// Builds the OCI linux.seccomp section of berth's RuntimeDefault profile for one container.

import type { Seccomp, SeccompSyscall } from "../bundle-spec/types.ts";
import { invalidArgument } from "../foundation/errdefs.ts";
import { archFamily, hostArch, nativeArch } from "./arch.ts";
import { conditionHolds } from "./conditions.ts";
import { EPERM, RUNTIME_DEFAULT_RULES, type ProfileRule } from "./default-profile.ts";

export interface RuntimeDefaultOptions {
  /** The container's bounding capabilities, with or without the CAP_ prefix. */
  capabilities: readonly string[];
  /** Architecture in any spelling ("amd64", "x86_64", "x64", "arm64", "aarch64", ...); default: this host's. */
  arch?: string;
  /** Kernel release for minKernel rules; default os.release(). */
  kernel?: string;
}

const withCapPrefix = (c: string): string => {
  const u = c.toUpperCase();
  return u.startsWith("CAP_") ? u : `CAP_${u}`;
};

function toSyscall(rule: ProfileRule): SeccompSyscall {
  const out: SeccompSyscall = { names: [...rule.names], action: "SCMP_ACT_ALLOW" };
  if (rule.action !== "allow") {
    out.action = "SCMP_ACT_ERRNO";
    out.errnoRet = rule.action.errno;
  }
  if (rule.args) out.args = rule.args.map((a) => ({ ...a }));
  return out;
}

/** berth's RuntimeDefault profile for a container with these capabilities on this architecture. */
export function runtimeDefaultProfile(opts: RuntimeDefaultOptions): Seccomp {
  const arch = opts.arch === undefined ? hostArch() : nativeArch(opts.arch);
  if (!arch || archFamily(arch).length === 0) throw invalidArgument(`unknown architecture "${opts.arch}" for the seccomp profile`);
  const ctx = { capabilities: opts.capabilities.map(withCapPrefix), arch, ...(opts.kernel ? { kernel: opts.kernel } : {}) };
  return {
    defaultAction: "SCMP_ACT_ERRNO",
    defaultErrnoRet: EPERM,
    architectures: archFamily(arch),
    syscalls: RUNTIME_DEFAULT_RULES.filter((r) => conditionHolds(r.when, ctx)).map(toSyscall),
  };
}
