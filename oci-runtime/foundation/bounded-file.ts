// Reads a small file that someone else wrote (a seccomp profile, a hosts.toml) without trusting its
// kind or size: opened non-blocking, so a FIFO cannot hang the open; refused unless it is a regular
// file (a FIFO or a device would block or never end); never more than `maxBytes` read, even when the
// file grows between fstat and read.
import { constants } from "node:fs";
import { open } from "node:fs/promises";

export type BoundedReadProblem =
  | { kind: "missing"; code: string }
  | { kind: "unreadable"; code: string }
  | { kind: "not-regular"; what: string }
  | { kind: "too-large"; size: number | undefined };

export class BoundedReadError extends Error {
  readonly problem: BoundedReadProblem;
  constructor(message: string, problem: BoundedReadProblem, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "BoundedReadError";
    this.problem = problem;
  }
}

function kindOf(st: { isDirectory(): boolean; isFIFO(): boolean; isSocket(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean }): string {
  if (st.isDirectory()) return "EISDIR: a directory";
  if (st.isFIFO()) return "a fifo";
  if (st.isSocket()) return "a socket";
  if (st.isCharacterDevice() || st.isBlockDevice()) return "a device";
  return "not a regular file";
}

/** The file's bytes; throws BoundedReadError (message without the path: callers name it) on any problem. */
export async function readBoundedFile(path: string, maxBytes: number): Promise<Buffer> {
  let fh;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "error";
    if (code === "ENOENT" || code === "ENOTDIR") throw new BoundedReadError("does not exist", { kind: "missing", code }, err);
    throw new BoundedReadError(`cannot be read (${code})`, { kind: "unreadable", code }, err);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) {
      const what = kindOf(st);
      throw new BoundedReadError(`cannot be read (${what}; it must be a regular file)`, { kind: "not-regular", what });
    }
    if (st.size > maxBytes) throw new BoundedReadError(`is ${st.size} bytes, over the limit of ${maxBytes} bytes`, { kind: "too-large", size: st.size });
    // Sized by fstat; grown (never past maxBytes + 1) if the file grows meanwhile.
    let buf = Buffer.alloc(Math.min(maxBytes, st.size) + 1);
    let n = 0;
    for (;;) {
      if (n === buf.length) {
        if (n > maxBytes) throw new BoundedReadError(`is over the limit of ${maxBytes} bytes`, { kind: "too-large", size: undefined });
        const bigger = Buffer.alloc(Math.min(maxBytes + 1, buf.length * 2));
        buf.copy(bigger);
        buf = bigger;
      }
      const { bytesRead } = await fh.read(buf, n, buf.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
    }
    if (n > maxBytes) throw new BoundedReadError(`is over the limit of ${maxBytes} bytes`, { kind: "too-large", size: undefined });
    return buf.subarray(0, n);
  } catch (err) {
    if (err instanceof BoundedReadError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? "error";
    throw new BoundedReadError(`cannot be read (${code})`, { kind: "unreadable", code }, err);
  } finally {
    await fh.close();
  }
}
