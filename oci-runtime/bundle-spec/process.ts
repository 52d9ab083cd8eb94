// Process options: args, env, working dir, rlimits.
import { invalidArgument } from "../foundation/errdefs.ts";
import { DEFAULT_PATH } from "./default-spec.ts";
import type { SpecOpt } from "./types.ts";

export interface ArgsInput {
  /** CRI `command` (overrides the image entrypoint). */
  command?: string[];
  /** CRI `args` (override the image cmd). */
  args?: string[];
  imageEntrypoint?: string[];
  imageCmd?: string[];
  /** For the error message. */
  containerName?: string;
}

/** The argv by the CRI/Docker rules: command replaces entrypoint and drops the image cmd; args replace cmd. */
export function resolveArgs(i: ArgsInput): string[] {
  const command = i.command ?? [];
  let args = i.args ?? [];
  let entry = command;
  if (command.length === 0) {
    entry = i.imageEntrypoint ?? [];
    if (args.length === 0) args = i.imageCmd ?? [];
  }
  const argv = [...entry, ...args];
  if (argv.length === 0) throw invalidArgument(`no command specified for container ${i.containerName ?? ""}`.trim());
  return argv;
}

export const withProcessArgs = (i: ArgsInput): SpecOpt<unknown> => (spec) => {
  spec.process!.args = resolveArgs(i);
};

const keyOf = (e: string) => { const i = e.indexOf("="); return i < 0 ? e : e.slice(0, i); };

/** Image env, then CRI env over it (same key replaced in place), PATH defaulted, HOSTNAME when given. */
export function mergeEnv(i: { imageEnv?: string[]; env?: { key: string; value: string }[]; hostname?: string }): string[] {
  const out = new Map<string, string>();
  if (i.hostname) out.set("HOSTNAME", `HOSTNAME=${i.hostname}`);
  for (const e of i.imageEnv ?? []) out.set(keyOf(e), e);
  for (const { key, value } of i.env ?? []) {
    if (!key) throw invalidArgument("environment variable with an empty name");
    // "K=V" has no escaping: "=" in a name would set another variable; execve cannot pass NUL.
    if (key.includes("=") || key.includes("\0")) throw invalidArgument(`config.envs: name ${JSON.stringify(key.slice(0, 80))} must not contain "=" or NUL`);
    if (value.includes("\0")) throw invalidArgument(`config.envs: value of ${JSON.stringify(key.slice(0, 80))} must not contain NUL`);
    out.set(key, `${key}=${value}`);
  }
  if (!out.has("PATH")) out.set("PATH", `PATH=${DEFAULT_PATH}`);
  return [...out.values()];
}

export const withEnv = (i: { imageEnv?: string[]; env?: { key: string; value: string }[]; hostname?: string }): SpecOpt<unknown> => (spec) => {
  spec.process!.env = mergeEnv(i);
};

export const withCwd = (i: { workingDir?: string; imageWorkingDir?: string }): SpecOpt<unknown> => (spec) => {
  const cwd = i.workingDir || i.imageWorkingDir || "/";
  if (!cwd.startsWith("/")) throw invalidArgument(`working dir "${cwd}" is not an absolute path`);
  spec.process!.cwd = cwd;
};

export const withTerminal = (tty: boolean): SpecOpt<unknown> => (spec) => {
  spec.process!.terminal = tty;
};

const RLIMITS = new Set(["RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_FSIZE", "RLIMIT_LOCKS", "RLIMIT_MEMLOCK",
  "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_RSS", "RLIMIT_RTPRIO", "RLIMIT_RTTIME", "RLIMIT_SIGPENDING", "RLIMIT_STACK"]);

/** Sets rlimits by type (names like "RLIMIT_NOFILE" or "nofile"), replacing existing ones of the same type. */
export const withRlimits = (limits: { type: string; soft: number; hard: number }[]): SpecOpt<unknown> => (spec) => {
  const p = spec.process!;
  const byType = new Map((p.rlimits ?? []).map((r) => [r.type, r]));
  for (const l of limits) {
    const type = l.type.toUpperCase().startsWith("RLIMIT_") ? l.type.toUpperCase() : `RLIMIT_${l.type.toUpperCase()}`;
    if (!RLIMITS.has(type)) throw invalidArgument(`unknown rlimit "${l.type}"`);
    if (l.soft > l.hard) throw invalidArgument(`rlimit ${type}: soft limit ${l.soft} is above hard limit ${l.hard}`);
    byType.set(type, { type, soft: l.soft, hard: l.hard });
  }
  p.rlimits = [...byType.values()];
};
