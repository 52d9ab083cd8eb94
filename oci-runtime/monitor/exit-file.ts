// conmon's exit files: `<exitDir>/<id>` holds the exit code; its mtime is the finish time.
import { watch, type FSWatcher } from "node:fs";
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";

export interface ExitInfo {
  /** Exit status; 128+signal when the process was killed by a signal. */
  exitCode: number;
  finishedAt: Date;
  finishedAtNs: bigint;
}

/** Reads a container's exit file; undefined while the container has not exited (or the file is half-written). */
export async function readExitFile(exitDir: string, id: string): Promise<ExitInfo | undefined> {
  const path = join(exitDir, id);
  let text: string;
  let st;
  try {
    text = await readFile(path, "utf8");
    st = await stat(path, { bigint: true });
  } catch {
    return undefined;
  }
  const code = Number.parseInt(text.trim(), 10);
  if (!Number.isInteger(code)) return undefined;
  return { exitCode: code, finishedAt: new Date(Number(st.mtimeNs / 1_000_000n)), finishedAtNs: st.mtimeNs };
}

export interface ExitWatcher {
  close(): void;
  /** Forgets an id whose exit was reported (its exit file is gone), so the set of seen ids stays bounded. */
  forget(id: string): void;
}

/**
 * Calls `onExit(id, info)` once for every exit file that appears in `exitDir` (and for those already there).
 * Uses fs.watch with a polling fallback, so a missed event is noticed within `pollMs`.
 */
export function watchExits(
  exitDir: string,
  onExit: (id: string, info: ExitInfo) => void,
  opts: { pollMs?: number; keepAlive?: boolean } = {},
): ExitWatcher {
  const seen = new Set<string>();
  let closed = false;
  let scanning = false;
  let again = false;
  const check = async (id: string) => {
    if (seen.has(id) || id.startsWith(".")) return;
    const info = await readExitFile(exitDir, id);
    if (info && !seen.has(id) && !closed) {
      seen.add(id);
      onExit(id, info);
    }
  };
  const scan = async () => {
    if (scanning) { again = true; return; }
    scanning = true;
    try {
      do {
        again = false;
        const names = await readdir(exitDir).catch(() => [] as string[]);
        for (const n of names) await check(n);
      } while (again && !closed);
    } finally {
      scanning = false;
    }
  };
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(exitDir, { persistent: false }, (_ev, name) => {
      if (name) void check(name.toString()); else void scan();
    });
    watcher.on("error", () => { watcher?.close(); watcher = undefined; });
  } catch {
    watcher = undefined;
  }
  const timer = setInterval(() => void scan(), opts.pollMs ?? 1000);
  if (!opts.keepAlive) timer.unref();
  void scan();
  return {
    close() {
      closed = true;
      clearInterval(timer);
      watcher?.close();
    },
    forget(id: string) {
      seen.delete(id);
    },
  };
}

/** Resolves when `<exitDir>/<id>` appears; rejects with the signal's reason when aborted. */
export function waitForExit(exitDir: string, id: string, opts: { signal?: AbortSignal; pollMs?: number } = {}): Promise<ExitInfo> {
  return new Promise((resolve, reject) => {
    let w: ExitWatcher | undefined;
    const onAbort = () => { w?.close(); reject(opts.signal?.reason ?? new Error("aborted")); };
    if (opts.signal?.aborted) return onAbort();
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    w = watchExits(exitDir, (got, info) => {
      if (got !== id) return;
      w?.close();
      opts.signal?.removeEventListener("abort", onAbort);
      resolve(info);
    }, { pollMs: opts.pollMs ?? 250, keepAlive: true });
  });
}
