// Structured JSON-lines logging to stderr. One logger for the whole daemon;
// `child` adds fixed fields (component, id...).

export type Level = "debug" | "info" | "warn" | "error";
const order: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
  /** Whether a line of `level` would be written: a caller skips building its fields when not. */
  enabled(level: Level): boolean;
}

let minLevel: Level = (process.env.BERTH_LOG_LEVEL as Level | undefined) ?? "info";
export const setLogLevel = (level: Level) => { minLevel = level; };

function errorFields(v: unknown): unknown {
  if (v instanceof Error) return { message: v.message, name: v.name, ...(v.cause ? { cause: errorFields(v.cause) } : {}) };
  return v;
}

export function createLogger(base: Record<string, unknown> = {}, write: (line: string) => void = (l) => process.stderr.write(l)): Logger {
  const emit = (level: Level, msg: string, fields?: Record<string, unknown>) => {
    if (order[level] < order[minLevel]) return;
    const rec: Record<string, unknown> = { time: new Date().toISOString(), level, msg, ...base };
    if (fields) for (const [k, v] of Object.entries(fields)) rec[k] = errorFields(v);
    write(JSON.stringify(rec) + "\n");
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    child: (fields) => createLogger({ ...base, ...fields }, write),
    enabled: (level) => order[level] >= order[minLevel],
  };
}

export const log = createLogger();
