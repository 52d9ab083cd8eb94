// The metav1.Status objects written on the error stream (protocol v4+).

import { BerthError } from "../../oci-runtime/foundation/errdefs.ts";

export const successStatus = () => ({ metadata: {}, status: "Success" });

export function exitCodeStatus(exitCode: number) {
  return {
    metadata: {},
    status: "Failure",
    message: `command terminated with non-zero exit code: exit status ${exitCode}`,
    reason: "NonZeroExitCode",
    details: { causes: [{ reason: "ExitCode", message: String(exitCode) }] },
  };
}

/** A message safe to show the client: BerthError messages as is, anything else generic. */
export const errorMessage = (err: unknown): string =>
  err instanceof BerthError ? err.message : err instanceof Error && err.name === "StreamError" ? err.message : "internal error";

export function errorStatus(message: string) {
  return {
    metadata: {},
    status: "Failure",
    message,
    reason: "InternalError",
    details: { causes: [{ message }] },
    code: 500,
  };
}

/** Error-stream payload for a finished exec; undefined when nothing is written. */
export function execResultPayload(v4: boolean, result: { exitCode: number } | { error: string }): string | undefined {
  if ("error" in result) return v4 ? JSON.stringify(errorStatus(result.error)) : result.error;
  if (result.exitCode === 0) return v4 ? JSON.stringify(successStatus()) : undefined;
  return v4 ? JSON.stringify(exitCodeStatus(result.exitCode)) : `command terminated with non-zero exit code: exit status ${result.exitCode}`;
}

/** An error raised by the streaming layer itself; its message reaches the client. */
export class StreamError extends Error {
  constructor(message: string) { super(message); this.name = "StreamError"; }
}
