// A pid lock file beside the socket: refuses a second berthd on the same socket,
// replaces the lock of a daemon that is gone.
import { linkSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { failedPrecondition } from "../oci-runtime/foundation/errdefs.ts";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Takes the lock or throws naming the holder. Returns a release function. */
export function acquireLock(path: string): () => void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${process.pid}\n`, { mode: 0o600 });
  try {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        linkSync(tmp, path); // atomic: fails with EEXIST when held
        return () => { try { if (readFileSync(path, "utf8").trim() === String(process.pid)) unlinkSync(path); } catch { /* gone */ } };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
        let holder = NaN;
        try { holder = Number(readFileSync(path, "utf8").trim()); } catch { /* vanished meanwhile */ }
        if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && alive(holder)) {
          throw failedPrecondition(`another berthd (pid ${holder}) holds ${path}; refusing to start on the same socket`);
        }
        try { unlinkSync(path); } catch { /* raced */ }
      }
    }
    throw failedPrecondition(`could not take lock ${path}`);
  } finally {
    try { unlinkSync(tmp); } catch { /* ignore */ }
  }
}
