// Starts Debian's docker-registry on 127.0.0.1 with a free port and storage in
// a temp dir of its own; stop() ends it and deletes the storage.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface LoopbackRegistry {
  /** "127.0.0.1:PORT" */
  readonly host: string;
  readonly port: number;
  readonly dir: string;
  stop(): Promise<void>;
}

export const REGISTRY_BINARY = "docker-registry";

async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, "127.0.0.1");
  await once(srv, "listening");
  const port = (srv.address() as { port: number }).port;
  srv.close();
  await once(srv, "close");
  return port;
}

async function waitReady(url: string, proc: ChildProcess, output: string[], timeoutMs: number): Promise<void> {
  const start = Date.now();
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`docker-registry exited (${proc.exitCode ?? proc.signalCode}): ${output.join("").slice(-2000)}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch { /* not listening yet */ }
    if (Date.now() - start > timeoutMs) throw new Error(`docker-registry did not answer ${url} within ${timeoutMs} ms: ${output.join("").slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function stopProcess(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = once(proc, "exit");
  proc.kill("SIGTERM");
  const timer = setTimeout(() => proc.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

/** Starts a registry listening only on 127.0.0.1 (retrying if the chosen port was taken meanwhile). */
export async function startLoopbackRegistry(opts: { binary?: string; timeoutMs?: number } = {}): Promise<LoopbackRegistry> {
  const dir = await mkdtemp(join(tmpdir(), "berth-critest-registry-"));
  let lastErr: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const config = join(dir, "config.yml");
    await writeFile(config, [
      "version: 0.1",
      "log:",
      "  level: warn",
      "  accesslog:",
      "    disabled: true",
      "storage:",
      "  filesystem:",
      `    rootdirectory: ${join(dir, "storage")}`,
      "  delete:",
      "    enabled: true",
      "http:",
      `  addr: 127.0.0.1:${port}`,
      "",
    ].join("\n"));
    const output: string[] = [];
    const proc = spawn(opts.binary ?? REGISTRY_BINARY, ["serve", config], { stdio: ["ignore", "pipe", "pipe"] });
    proc.stdout!.setEncoding("utf8").on("data", (d: string) => output.push(d));
    proc.stderr!.setEncoding("utf8").on("data", (d: string) => output.push(d));
    const spawned = new Promise<void>((resolve, reject) => { proc.once("spawn", resolve); proc.once("error", reject); });
    try {
      await spawned;
      await waitReady(`http://127.0.0.1:${port}/v2/`, proc, output, opts.timeoutMs ?? 20_000);
      return {
        host: `127.0.0.1:${port}`, port, dir,
        async stop() {
          await stopProcess(proc);
          await rm(dir, { recursive: true, force: true });
        },
      };
    } catch (err) {
      lastErr = err;
      await stopProcess(proc).catch(() => undefined);
      if ((err as NodeJS.ErrnoException).code === "ENOENT") break;
    }
  }
  await rm(dir, { recursive: true, force: true });
  throw lastErr instanceof Error ? lastErr : new Error(String(lastErr));
}
