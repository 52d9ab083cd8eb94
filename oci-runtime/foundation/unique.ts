// Names for temporary files and directories in berth's own root-only directories: unique within
// this berthd (a counter) and among the berthds before it (its pid, start time and a few random
// bits from V8's generator, for a berthd that always gets the same pid and a clock set back),
// which is all a name there needs. Files are still created exclusively (atomic-file's and
// runc-cli's "wx", mkdir). They need no octets from node:crypto, so writing one does not load it
// (foundation/builtins.ts): runc's log file at start-up was the only use of it before the first
// pod or pull.
const PREFIX = `${process.pid.toString(36)}-${Date.now().toString(36)}${Math.floor(Math.random() * 36 ** 4).toString(36).padStart(4, "0")}`;
let counter = 0;

/** A suffix no other call of this process, nor an earlier berthd, returns. */
export function uniqueSuffix(): string {
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER;
  return `${PREFIX}-${counter.toString(36)}`;
}
