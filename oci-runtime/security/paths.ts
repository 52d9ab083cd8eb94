// Masked and read-only paths: containerd's (and kubelet's "Default" proc mount) lists.

export const DEFAULT_MASKED_PATHS: readonly string[] = [
  "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
  "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/sys/devices/virtual/powercap", "/proc/scsi",
];

export const DEFAULT_READONLY_PATHS: readonly string[] = [
  "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
];

export interface PathsInput {
  privileged?: boolean | undefined;
  /** CRI masked_paths: a non-empty list replaces the defaults (kubelet always fills it for the Default proc mount). */
  maskedPaths?: readonly string[] | undefined;
  readonlyPaths?: readonly string[] | undefined;
}

/** Privileged: none. Otherwise the CRI lists when given, else the defaults. */
export function maskedAndReadonlyPaths(input: PathsInput): { maskedPaths: string[]; readonlyPaths: string[] } {
  if (input.privileged) return { maskedPaths: [], readonlyPaths: [] };
  const pick = (given: readonly string[] | undefined, def: readonly string[]): string[] =>
    given && given.length > 0 ? [...given] : [...def];
  return { maskedPaths: pick(input.maskedPaths, DEFAULT_MASKED_PATHS), readonlyPaths: pick(input.readonlyPaths, DEFAULT_READONLY_PATHS) };
}
