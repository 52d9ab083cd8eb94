// Serves a directory read-only over HTTP on 127.0.0.1 (a lookaside signature store for tests).
// GET only; paths are decoded and must stay inside the directory; missing files answer 404.
import { readFile, stat } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";

export interface StaticServer { url: string; requests: string[]; stop(): Promise<void> }

export async function serveDirectory(dir: string): Promise<StaticServer> {
  const root = path.resolve(dir);
  const requests: string[] = [];
  const server = createServer(async (req, res) => {
    requests.push(req.url ?? "");
    try {
      if (req.method !== "GET") { res.writeHead(405).end(); return; }
      const rel = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
      const file = path.resolve(root, "." + rel);
      if (file !== root && !file.startsWith(root + path.sep)) { res.writeHead(403).end(); return; }
      const st = await stat(file).catch(() => undefined);
      if (!st?.isFile()) { res.writeHead(404).end(); return; }
      const body = await readFile(file);
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": body.length }).end(body);
    } catch {
      res.writeHead(500).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    stop: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
