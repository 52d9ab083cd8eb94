// Starts Debian's docker-registry on 127.0.0.1 (a free port, its own storage dir), optionally
// with htpasswd basic auth. Used by the image-service integration tests and start-registry.sh.
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile, mkdir } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

export interface RegistryOptions {
  /** Directory for storage and config (a temp dir is made and removed when omitted). */
  dir?: string;
  htpasswd?: { username: string; password: string };
  port?: number;
}

export interface RunningRegistry {
  address: string;
  dir: string;
  pid: number;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export async function startRegistry(opts: RegistryOptions = {}): Promise<RunningRegistry> {
  const own = !opts.dir;
  const dir = opts.dir ?? (await mkdtemp(path.join(tmpdir(), "berth-registry-")));
  await mkdir(path.join(dir, "storage"), { recursive: true });
  for (let tries = 0; ; tries++) {
    const port = opts.port ?? (await freePort());
    const auth = opts.htpasswd
      ? `auth:\n  htpasswd:\n    realm: berth-test\n    path: ${path.join(dir, "htpasswd")}\n`
      : "";
    if (opts.htpasswd) {
      const line = execFileSync("htpasswd", ["-nbB", opts.htpasswd.username, opts.htpasswd.password], { encoding: "utf8" });
      await writeFile(path.join(dir, "htpasswd"), line);
    }
    const config = [
      "version: 0.1",
      "log:\n  level: error\n  accesslog:\n    disabled: true",
      `storage:\n  filesystem:\n    rootdirectory: ${path.join(dir, "storage")}\n  delete:\n    enabled: true`,
      `http:\n  addr: 127.0.0.1:${port}\n  secret: berth-test-secret`,
      auth,
    ].join("\n");
    await writeFile(path.join(dir, "config.yml"), config);
    const child: ChildProcess = spawn("docker-registry", ["serve", path.join(dir, "config.yml")], { stdio: ["ignore", "ignore", "pipe"], detached: false });
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => { if (stderr.length < 8192) stderr += d.toString(); });
    const address = `127.0.0.1:${port}`;
    let exited = false;
    child.once("exit", () => { exited = true; });
    for (let i = 0; i < 100 && !exited; i++) {
      try {
        const res = await fetch(`http://${address}/v2/`);
        if (res.status === 200 || res.status === 401) {
          return {
            address, dir, pid: child.pid!,
            stop: async () => {
              if (!exited) {
                const done = new Promise((r) => child.once("exit", r));
                child.kill("SIGTERM");
                await Promise.race([done, sleep(5000)]);
                if (!exited) child.kill("SIGKILL");
              }
              if (own) await rm(dir, { recursive: true, force: true });
            },
          };
        }
      } catch { /* not up yet */ }
      await sleep(50);
    }
    child.kill("SIGKILL");
    if (tries >= 2 || opts.port) {
      if (own) await rm(dir, { recursive: true, force: true });
      throw new Error(`docker-registry did not start on ${address}: ${stderr.trim()}`);
    }
  }
}

// CLI: node hack/registry/registry.ts <dir> [user:password]  -> prints the address, runs until killed.
if (import.meta.main) {
  const [dir, cred] = process.argv.slice(2);
  const [username, password] = (cred ?? "").split(":");
  const reg = await startRegistry({ ...(dir ? { dir: path.resolve(dir) } : {}), ...(cred ? { htpasswd: { username: username!, password: password ?? "" } } : {}) });
  process.stdout.write(`${reg.address}\n`);
  const stop = () => { void reg.stop().then(() => process.exit(0)); };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}
