// Loads a Localhost seccomp profile: OCI runtime-spec linux.seccomp JSON, or the Docker/containerd profile
// format (archMap, name/names, includes/excludes of capabilities, architectures and minimum kernel).
// Every problem is INVALID_ARGUMENT naming the file and the field.

import { BoundedReadError, readBoundedFile } from "../foundation/bounded-file.ts";
import type { Seccomp, SeccompSyscall } from "../bundle-spec/types.ts";
import { invalidArgument } from "../foundation/errdefs.ts";
import { canonicalCapability } from "../security/capability-names.ts";
import { SCMP_ARCHES, hostArch, isNativeArchName, isScmpArch, isSyscallOn, nativeArch, scmpArch, type ScmpArch } from "./arch.ts";
import { conditionHolds, parseKernelVersion } from "./conditions.ts";
import type { RuleCondition } from "./default-profile.ts";

export const SECCOMP_ACTIONS = [
  "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO",
  "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY",
] as const;
export const SECCOMP_OPS = [
  "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ",
] as const;
export const SECCOMP_FLAGS = [
  "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
  "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
] as const;

export interface ProfileOptions {
  /** The container's bounding capabilities (with or without CAP_), for includes/excludes.caps. */
  capabilities: readonly string[];
  /** Architecture in any spelling; default: this host's. */
  arch?: string;
  /** Kernel release for minKernel; default os.release(). */
  kernel?: string;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const isUint = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v) && v >= 0;

/** Largest Localhost profile read (Docker's and containerd's defaults are about 20 KiB). */
export const MAX_PROFILE_BYTES = 1024 * 1024;

/** Reads and converts a profile file (at most `maxBytes`, default MAX_PROFILE_BYTES). */
export async function loadLocalhostProfile(path: string, opts: ProfileOptions, maxBytes = MAX_PROFILE_BYTES): Promise<Seccomp> {
  let text: string;
  try {
    text = (await readBoundedFile(path, maxBytes)).toString("utf8");
  } catch (err) {
    if (!(err instanceof BoundedReadError)) throw err;
    const msg = err.problem.kind === "not-regular" ? err.message.replace("it must be", "a profile must be") : err.message;
    throw invalidArgument(`seccomp profile "${path}" ${msg}`, err);
  }
  return parseProfile(text, path, opts);
}

/** Converts profile text (either format) into OCI linux.seccomp; `file` names the source in errors. */
export function parseProfile(text: string, file: string, opts: ProfileOptions): Seccomp {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw invalidArgument(`seccomp profile "${file}" is not valid json: ${(err as Error).message}`, err);
  }
  return new ProfileParser(file, opts).parse(doc);
}

class ProfileParser {
  readonly file: string;
  readonly arch: string;
  readonly ctx: { capabilities: string[]; arch: string; kernel?: string };

  constructor(file: string, opts: ProfileOptions) {
    this.file = file;
    const arch = opts.arch === undefined ? hostArch() : nativeArch(opts.arch);
    if (!arch) throw invalidArgument(`unknown architecture "${opts.arch}" for seccomp profile "${file}"`);
    this.arch = arch;
    const capabilities = opts.capabilities.map((c) => canonicalCapability(c) ?? c.toUpperCase());
    this.ctx = { capabilities, arch, ...(opts.kernel ? { kernel: opts.kernel } : {}) };
  }

  fail(field: string, why: string): never {
    throw invalidArgument(`seccomp profile "${this.file}": ${field}: ${why}`);
  }

  parse(doc: unknown): Seccomp {
    if (!isObject(doc)) this.fail("(top level)", "must be a json object");
    const out: Seccomp = { defaultAction: this.action(doc.defaultAction, "defaultAction") };
    if (doc.defaultErrnoRet !== undefined && doc.defaultErrnoRet !== null) {
      out.defaultErrnoRet = this.errno(doc.defaultErrnoRet, "defaultErrnoRet");
    }
    const selected = this.architectures(doc);
    if (selected.length) out.architectures = selected;
    if (doc.flags !== undefined && doc.flags !== null) out.flags = this.flags(doc.flags);
    if (doc.listenerPath !== undefined) {
      if (typeof doc.listenerPath !== "string") this.fail("listenerPath", "must be a string");
      if (doc.listenerPath) out.listenerPath = doc.listenerPath;
    }
    if (out.defaultAction === "SCMP_ACT_NOTIFY" && !out.listenerPath) this.fail("listenerPath", "is required by SCMP_ACT_NOTIFY");
    const syscalls = this.syscalls(doc.syscalls);
    if (syscalls.length) out.syscalls = syscalls;
    return out;
  }

  action(v: unknown, field: string): string {
    if (typeof v !== "string" || v === "") this.fail(field, "an action is required");
    if (!(SECCOMP_ACTIONS as readonly string[]).includes(v)) this.fail(field, `unknown action "${v}"`);
    return v;
  }

  errno(v: unknown, field: string): number {
    if (!isUint(v)) this.fail(field, "must be a non-negative integer errno");
    return v;
  }

  scmpArchList(v: unknown, field: string): ScmpArch[] {
    if (!Array.isArray(v)) this.fail(field, "must be an array of SCMP_ARCH_* names");
    return v.map((a, i) => {
      if (typeof a !== "string" || !isScmpArch(a)) this.fail(`${field}[${i}]`, `unknown architecture "${String(a)}"`);
      return a;
    });
  }

  /** The architectures the filter covers on this host ([] leaves the runtime's native default). */
  architectures(doc: Json): ScmpArch[] {
    const hasList = Array.isArray(doc.architectures) && doc.architectures.length > 0;
    const hasMap = Array.isArray(doc.archMap) && doc.archMap.length > 0;
    if (hasList && hasMap) this.fail("archMap", "cannot be used together with architectures");
    if (doc.architectures !== undefined && doc.architectures !== null) {
      return this.scmpArchList(doc.architectures, "architectures");
    }
    if (doc.archMap === undefined || doc.archMap === null) return [];
    if (!Array.isArray(doc.archMap)) this.fail("archMap", "must be an array");
    let selected: ScmpArch[] = [];
    doc.archMap.forEach((entry, i) => {
      if (!isObject(entry)) this.fail(`archMap[${i}]`, "must be an object");
      const main = entry.architecture;
      if (typeof main !== "string" || !isScmpArch(main)) this.fail(`archMap[${i}].architecture`, `unknown architecture "${String(main)}"`);
      const subs = entry.subArchitectures === undefined || entry.subArchitectures === null
        ? [] : this.scmpArchList(entry.subArchitectures, `archMap[${i}].subArchitectures`);
      if (main === scmpArch(this.arch) && selected.length === 0) selected = [main, ...subs];
    });
    return selected;
  }

  flags(v: unknown): string[] {
    if (!Array.isArray(v)) this.fail("flags", "must be an array");
    return v.map((f, i) => {
      if (typeof f !== "string" || !(SECCOMP_FLAGS as readonly string[]).includes(f)) this.fail(`flags[${i}]`, `unknown flag "${String(f)}"`);
      return f;
    });
  }

  syscalls(v: unknown): SeccompSyscall[] {
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) this.fail("syscalls", "must be an array");
    const out: SeccompSyscall[] = [];
    v.forEach((entry, i) => {
      const rule = this.syscall(entry, `syscalls[${i}]`);
      if (rule) out.push(rule);
    });
    return out;
  }

  /** One entry; undefined when its includes/excludes leave it out for this container. */
  syscall(entry: unknown, field: string): SeccompSyscall | undefined {
    if (!isObject(entry)) this.fail(field, "must be an object");
    const includes = this.filter(entry.includes, `${field}.includes`);
    const excludes = this.filter(entry.excludes, `${field}.excludes`);
    const names = this.names(entry, field);
    const out: SeccompSyscall = { names, action: this.action(entry.action, `${field}.action`) };
    if (entry.errnoRet !== undefined && entry.errnoRet !== null) out.errnoRet = this.errno(entry.errnoRet, `${field}.errnoRet`);
    if (entry.args !== undefined && entry.args !== null) {
      const args = this.args(entry.args, `${field}.args`);
      if (args.length) out.args = args;
    }
    const when: RuleCondition = {
      ...(includes.caps ? { caps: includes.caps } : {}),
      ...(includes.arches ? { arches: includes.arches } : {}),
      ...(includes.minKernel ? { minKernel: includes.minKernel } : {}),
      ...(excludes.caps ? { withoutCaps: excludes.caps } : {}),
      ...(excludes.arches ? { notArches: excludes.arches } : {}),
    };
    if (!conditionHolds(when, this.ctx)) return undefined;
    // excludes.minKernel: the rule is left out on kernels at least that new.
    if (excludes.minKernel && conditionHolds({ minKernel: excludes.minKernel }, this.ctx)) return undefined;
    return out;
  }

  /**
   * A name must be a syscall on some architecture: profiles (Docker's and containerd's defaults among them)
   * list calls of several architectures at once, and the runtime skips the ones this kernel lacks.
   */
  names(entry: Json, field: string): string[] {
    const hasName = entry.name !== undefined && entry.name !== null && entry.name !== "";
    const hasNames = Array.isArray(entry.names) && entry.names.length > 0;
    if (hasName && hasNames) this.fail(field, "has both name and names");
    if (!hasName && !hasNames) this.fail(`${field}.names`, "at least one syscall name is required");
    if (!hasName && !Array.isArray(entry.names)) this.fail(`${field}.names`, "must be an array of syscall names");
    const list: unknown[] = hasName ? [entry.name] : (entry.names as unknown[]);
    const sub = hasName ? `${field}.name` : `${field}.names`;
    return list.map((n, j) => {
      const f = hasName ? sub : `${sub}[${j}]`;
      if (typeof n !== "string" || n === "") this.fail(f, "must be a syscall name");
      if (!isSyscallOn(n, SCMP_ARCHES)) this.fail(f, `unknown syscall "${n}" (not a system call on ${this.arch} or any other linux architecture)`);
      return n;
    });
  }

  args(v: unknown, field: string): NonNullable<SeccompSyscall["args"]> {
    if (!Array.isArray(v)) this.fail(field, "must be an array");
    return v.map((a, k) => {
      const f = `${field}[${k}]`;
      if (!isObject(a)) this.fail(f, "must be an object");
      if (!isUint(a.index) || a.index > 5) this.fail(`${f}.index`, "must be an argument index from 0 to 5");
      if (!isUint(a.value)) this.fail(`${f}.value`, "must be a non-negative integer");
      if (a.valueTwo !== undefined && a.valueTwo !== null && !isUint(a.valueTwo)) this.fail(`${f}.valueTwo`, "must be a non-negative integer");
      if (typeof a.op !== "string" || !(SECCOMP_OPS as readonly string[]).includes(a.op)) this.fail(`${f}.op`, `unknown operator "${String(a.op)}"`);
      return { index: a.index, value: a.value, ...(isUint(a.valueTwo) ? { valueTwo: a.valueTwo } : {}), op: a.op };
    });
  }

  filter(v: unknown, field: string): { caps?: string[]; arches?: string[]; minKernel?: string } {
    if (v === undefined || v === null) return {};
    if (!isObject(v)) this.fail(field, "must be an object");
    const out: { caps?: string[]; arches?: string[]; minKernel?: string } = {};
    if (v.caps !== undefined && v.caps !== null) {
      if (!Array.isArray(v.caps)) this.fail(`${field}.caps`, "must be an array of capability names");
      out.caps = v.caps.map((c, i) => {
        const name = typeof c === "string" ? canonicalCapability(c) : undefined;
        if (!name) this.fail(`${field}.caps[${i}]`, `unknown capability "${String(c)}"`);
        return name;
      });
    }
    if (v.arches !== undefined && v.arches !== null) {
      if (!Array.isArray(v.arches)) this.fail(`${field}.arches`, "must be an array of architecture names");
      out.arches = v.arches.map((a, i) => {
        if (typeof a !== "string" || !isNativeArchName(a)) this.fail(`${field}.arches[${i}]`, `unknown architecture "${String(a)}"`);
        return nativeArch(a) ?? a;
      });
    }
    if (v.minKernel !== undefined && v.minKernel !== null && v.minKernel !== "") {
      if (typeof v.minKernel !== "string" || !parseKernelVersion(v.minKernel)) this.fail(`${field}.minKernel`, `invalid kernel version "${String(v.minKernel)}"`);
      out.minKernel = v.minKernel;
    }
    return out;
  }
}
