// Test helper: what an OCI seccomp filter decides for one call (native architecture, arguments as numbers).
// Simplified libseccomp semantics: a rule matches when it names the call and all its argument checks hold;
// an ALLOW match wins, otherwise the first match's action, otherwise the default action.

import type { Seccomp, SeccompSyscall } from "../../oci-runtime/bundle-spec/types.ts";

type Arg = NonNullable<SeccompSyscall["args"]>[number];

function argHolds(a: Arg, args: readonly number[]): boolean {
  const v = BigInt(args[a.index] ?? 0);
  const x = BigInt(a.value);
  switch (a.op) {
    case "SCMP_CMP_NE": return v !== x;
    case "SCMP_CMP_LT": return v < x;
    case "SCMP_CMP_LE": return v <= x;
    case "SCMP_CMP_EQ": return v === x;
    case "SCMP_CMP_GE": return v >= x;
    case "SCMP_CMP_GT": return v > x;
    case "SCMP_CMP_MASKED_EQ": return (v & x) === BigInt(a.valueTwo ?? 0);
    default: throw new Error(`unknown op ${a.op}`);
  }
}

const outcome = (action: string, errno: number | undefined): string =>
  action === "SCMP_ACT_ALLOW" ? "allow" : action === "SCMP_ACT_ERRNO" ? `errno:${errno ?? 1}` : action;

/** "allow", "errno:<n>" or the action name. */
export function decide(p: Seccomp, name: string, args: readonly number[] = []): string {
  const matches = (p.syscalls ?? []).filter((s) => s.names.includes(name) && (s.args ?? []).every((a) => argHolds(a, args)));
  if (matches.some((m) => m.action === "SCMP_ACT_ALLOW")) return "allow";
  const first = matches[0];
  if (first) return outcome(first.action, first.errnoRet);
  return outcome(p.defaultAction, p.defaultErrnoRet);
}
