// Architecture names as the three vocabularies spell them: libseccomp's SCMP_ARCH_* (OCI `architectures`),
// the short names Docker/containerd profiles use in `includes.arches` ("amd64", "arm64", ...), and Node's
// process.arch ("x64", "arm64", ...). Also: which syscall names exist on an architecture.

import {
  ARM_EXTRA_NAMES, GENERIC_NAMES, OTHER_ARCH_NAMES, RISCV64_EXTRA_NAMES, X86_64_SYSCALLS, X86_ONLY_NAMES,
} from "./syscall-names.ts";

/** Every SCMP_ARCH_* value the OCI runtime-spec allows. */
export const SCMP_ARCHES = [
  "SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
  "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64",
  "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390",
  "SCMP_ARCH_S390X", "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64", "SCMP_ARCH_LOONGARCH64",
] as const;
export type ScmpArch = (typeof SCMP_ARCHES)[number];

/** Short (libseccomp "native") names, as Docker profiles write them in includes/excludes.arches. */
const NATIVE_TO_SCMP: Readonly<Record<string, ScmpArch>> = {
  x86: "SCMP_ARCH_X86", amd64: "SCMP_ARCH_X86_64", x32: "SCMP_ARCH_X32", arm: "SCMP_ARCH_ARM",
  arm64: "SCMP_ARCH_AARCH64", mips: "SCMP_ARCH_MIPS", mips64: "SCMP_ARCH_MIPS64", mips64n32: "SCMP_ARCH_MIPS64N32",
  mipsel: "SCMP_ARCH_MIPSEL", mipsel64: "SCMP_ARCH_MIPSEL64", mipsel64n32: "SCMP_ARCH_MIPSEL64N32",
  mips3l64n32: "SCMP_ARCH_MIPSEL64N32", ppc: "SCMP_ARCH_PPC", ppc64: "SCMP_ARCH_PPC64", ppc64le: "SCMP_ARCH_PPC64LE",
  s390: "SCMP_ARCH_S390", s390x: "SCMP_ARCH_S390X", parisc: "SCMP_ARCH_PARISC", parisc64: "SCMP_ARCH_PARISC64",
  riscv64: "SCMP_ARCH_RISCV64", loong64: "SCMP_ARCH_LOONGARCH64", loongarch64: "SCMP_ARCH_LOONGARCH64",
};

/** Other spellings of the same architectures (Node's process.arch, uname -m). */
const ALIASES: Readonly<Record<string, string>> = {
  x64: "amd64", x86_64: "amd64", ia32: "x86", i386: "x86", i686: "x86", aarch64: "arm64", armv7l: "arm",
  mipsle: "mipsel",
};

/** The compat architectures a native one also runs (as Docker's archMap). */
const SUB_ARCHES: Readonly<Partial<Record<ScmpArch, ScmpArch[]>>> = {
  SCMP_ARCH_X86_64: ["SCMP_ARCH_X86", "SCMP_ARCH_X32"],
  SCMP_ARCH_AARCH64: ["SCMP_ARCH_ARM"],
  SCMP_ARCH_MIPS64: ["SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64N32"],
  SCMP_ARCH_MIPS64N32: ["SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64"],
  SCMP_ARCH_MIPSEL64: ["SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64N32"],
  SCMP_ARCH_MIPSEL64N32: ["SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64"],
  SCMP_ARCH_S390X: ["SCMP_ARCH_S390"],
};

export const isScmpArch = (s: string): s is ScmpArch => (SCMP_ARCHES as readonly string[]).includes(s);
export const isNativeArchName = (s: string): boolean => s in NATIVE_TO_SCMP;

/** Normalises any spelling ("x64", "x86_64", "amd64", "SCMP_ARCH_X86_64") to the short native name, or undefined. */
export function nativeArch(arch: string): string | undefined {
  const a = ALIASES[arch] ?? arch;
  if (a in NATIVE_TO_SCMP) return a === "loongarch64" ? "loong64" : a;
  if (isScmpArch(arch)) return Object.entries(NATIVE_TO_SCMP).find(([, v]) => v === arch)?.[0];
  return undefined;
}

export const scmpArch = (native: string): ScmpArch | undefined => NATIVE_TO_SCMP[native];

/** The host's native short name, from Node's process.arch. */
export const hostArch = (): string => nativeArch(process.arch) ?? process.arch;

/** A native architecture and the compat architectures a filter for it must also cover. */
export function archFamily(native: string): ScmpArch[] {
  const main = NATIVE_TO_SCMP[native];
  if (!main) return [];
  return [main, ...(SUB_ARCHES[main] ?? [])];
}

const X86_64_NAMES = new Set(Object.keys(X86_64_SYSCALLS));
const X86_NAMES = new Set([...X86_64_NAMES, ...X86_ONLY_NAMES]);
const GENERIC = new Set(GENERIC_NAMES);
const ARM_NAMES = new Set([...X86_NAMES, ...GENERIC, ...ARM_EXTRA_NAMES]);
const RISCV_NAMES = new Set([...GENERIC, ...RISCV64_EXTRA_NAMES]);
const ANY_NAMES = new Set([...ARM_NAMES, ...RISCV_NAMES, ...OTHER_ARCH_NAMES]);

/** Names of the syscalls that exist on an architecture (a superset where berth has no exact table). */
export function syscallNamesOf(arch: ScmpArch): ReadonlySet<string> {
  switch (arch) {
    case "SCMP_ARCH_X86_64": case "SCMP_ARCH_X32": return X86_64_NAMES;
    case "SCMP_ARCH_X86": return X86_NAMES;
    case "SCMP_ARCH_AARCH64": case "SCMP_ARCH_LOONGARCH64": return GENERIC;
    case "SCMP_ARCH_RISCV64": return RISCV_NAMES;
    case "SCMP_ARCH_ARM": return ARM_NAMES;
    default: return ANY_NAMES;
  }
}

/** True when `name` is a syscall on at least one of `arches`. */
export const isSyscallOn = (name: string, arches: readonly ScmpArch[]): boolean =>
  arches.some((a) => syscallNamesOf(a).has(name));
