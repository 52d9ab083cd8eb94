// glibc's malloc_trim(0) for berthd's own process, through the berth-trim.node addon
// (helper/berth-trim.c, built by hack/build-helpers.sh beside the other helpers). After a
// collection has freed what pods and containers held, glibc keeps the pages those frees left in
// the middle of its heap; malloc_trim gives back every whole free page.
import { statSync } from "node:fs";

export type MallocTrim = () => boolean;

/**
 * Loads the addon at `file`. It runs inside berthd, so it must be a regular file owned by root
 * and writable by no one else (hack/build-helpers.sh installs it so); else, or when it is
 * missing, the reason is returned.
 */
export function loadMallocTrim(file: string): MallocTrim | { unavailable: string } {
  let st;
  try {
    st = statSync(file);
  } catch (err) {
    return { unavailable: `${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
  }
  if (!st.isFile()) return { unavailable: `${file} is not a regular file` };
  if (st.uid !== 0 || (st.mode & 0o022) !== 0) return { unavailable: `${file} must be owned by root and writable by it alone (uid ${st.uid}, mode ${(st.mode & 0o7777).toString(8)})` };
  const mod = { exports: {} as { trim?: unknown } };
  try {
    process.dlopen(mod as unknown as NodeJS.Module, file);
  } catch (err) {
    return { unavailable: `${file}: ${(err as Error).message}` };
  }
  const trim = mod.exports.trim;
  if (typeof trim !== "function") return { unavailable: `${file} has no trim function` };
  return () => trim() === true;
}
