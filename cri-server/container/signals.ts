// Signal names: the stop signal of an image or a CRI config, normalised to "SIGxxx".

const SIGNALS: Record<number, string> = { 1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 9: "SIGKILL", 10: "SIGUSR1", 12: "SIGUSR2", 15: "SIGTERM", 19: "SIGSTOP", 28: "SIGWINCH" };

/** CRI's Signal enum (RUNTIME_DEFAULT=0, SIGABRT=1, ...) names; index = enum value. */
const CRI_SIGNALS = ["", "SIGABRT", "SIGALRM", "SIGBUS", "SIGCHLD", "SIGCLD", "SIGCONT", "SIGFPE", "SIGHUP", "SIGILL", "SIGINT", "SIGIO", "SIGIOT", "SIGKILL", "SIGPIPE", "SIGPOLL", "SIGPROF", "SIGPWR", "SIGQUIT", "SIGSEGV", "SIGSTKFLT", "SIGSTOP", "SIGSYS", "SIGTERM", "SIGTRAP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGUSR1", "SIGUSR2", "SIGVTALRM", "SIGWINCH", "SIGXCPU", "SIGXFSZ", "SIGRTMIN"];

export function normaliseSignal(s: string): string {
  if (!s) return "SIGTERM";
  if (/^\d+$/.test(s)) return SIGNALS[Number(s)] ?? s;
  const up = s.toUpperCase();
  return up.startsWith("SIG") ? up : `SIG${up}`;
}

export const criSignalName = (v: number): string => CRI_SIGNALS[v] ?? "";
export const criSignalValue = (name: string): number => Math.max(0, CRI_SIGNALS.indexOf(normaliseSignal(name)));
