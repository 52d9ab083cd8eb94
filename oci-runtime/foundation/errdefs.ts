// Typed domain errors shared by every layer of berth. Handlers and libraries
// throw these; the RPC wrapper (cri-server/instrument.ts) is the only place
// that turns them into gRPC status codes. Anything else becomes INTERNAL.

/** gRPC status codes (numeric values are the protocol's own). */
export const Code = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type Code = (typeof Code)[keyof typeof Code];

/** Each code's name, by value (every RPC's log line names its code). */
const CODE_NAMES: readonly string[] = (() => {
  const names: string[] = [];
  for (const [name, v] of Object.entries(Code)) names[v] = name;
  return names;
})();

export const codeName = (code: number): string => CODE_NAMES[code] ?? `CODE_${code}`;

/**
 * An error whose message is safe to show to the client. Messages are
 * lower-case, say what failed and name the id, path, field or reference.
 */
export class BerthError extends Error {
  readonly code: Code;
  constructor(code: Code, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "BerthError";
    this.code = code;
  }

  /** Turns anything thrown into a BerthError; unknown errors become INTERNAL (message kept only in `cause`). */
  static from(err: unknown): BerthError {
    if (err instanceof BerthError) return err;
    return new BerthError(Code.INTERNAL, "internal error", { cause: err });
  }
}

export const invalidArgument = (msg: string, cause?: unknown) => new BerthError(Code.INVALID_ARGUMENT, msg, { cause });
export const notFound = (msg: string, cause?: unknown) => new BerthError(Code.NOT_FOUND, msg, { cause });
export const alreadyExists = (msg: string, cause?: unknown) => new BerthError(Code.ALREADY_EXISTS, msg, { cause });
export const failedPrecondition = (msg: string, cause?: unknown) => new BerthError(Code.FAILED_PRECONDITION, msg, { cause });
export const unavailable = (msg: string, cause?: unknown) => new BerthError(Code.UNAVAILABLE, msg, { cause });
export const unimplemented = (msg: string) => new BerthError(Code.UNIMPLEMENTED, msg);
export const deadlineExceeded = (msg: string, cause?: unknown) => new BerthError(Code.DEADLINE_EXCEEDED, msg, { cause });
export const resourceExhausted = (msg: string, cause?: unknown) => new BerthError(Code.RESOURCE_EXHAUSTED, msg, { cause });
/** An internal failure whose message is still meant for the operator (for example the OCI runtime's own stderr). */
export const internal = (msg: string, cause?: unknown) => new BerthError(Code.INTERNAL, msg, { cause });

export const isNotFound = (err: unknown) => err instanceof BerthError && err.code === Code.NOT_FOUND;
