// Names for temporary files and directories in berth's own root-only directories: unique within
// this berthd (a counter) and among the berthds before it (its pid and start time), which is all
// a name there needs. Files are still created exclusively where it matters (atomic-file's "wx").
// They need no random octets, so writing one does not load node:crypto (foundation/builtins.ts):
// runc's log file at start-up was the only use of it before the first pod or pull.
const PREFIX = `${process.pid.toString(36)}-${Date.now().toString(36)}`;
let counter = 0;

/** A suffix no other call of this process, nor an earlier berthd, returns. */
export function uniqueSuffix(): string {
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER;
  return `${PREFIX}-${counter.toString(36)}`;
}
