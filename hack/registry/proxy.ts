// A loopback HTTP proxy in front of a test registry: counts requests, can cut or stall a blob
// download, and can demand bearer tokens from its own token endpoint (for token-auth tests).
import http from "node:http";
import https from "node:https";
import { randomBytes } from "node:crypto";

export interface ProxyOptions {
  upstream: string;
  /** Cut the connection after `afterBytes` body bytes of the next `times` GETs of this blob. */
  cut?: { digest: string; afterBytes: number; times: number };
  /** Send headers then nothing for GETs of this blob (or of each of these). */
  stall?: { digest: string | string[] };
  /** Require bearer tokens issued by /token for these credentials. */
  token?: { username: string; password: string; field?: "token" | "access_token"; expiresIn?: number; refreshToken?: string; anonymous?: boolean };
  /** Serve HTTPS with this key and certificate (PEM). */
  tls?: { key: Buffer; cert: Buffer };
  /** Answer every request with this status (a broken mirror). */
  failWith?: number;
  /**
   * Hold each blob GET until `until` of them are in flight (then all held ones go on) or for
   * `maxMs`: a client that may have N downloads at once shows N in flight (peakBlobGets), and one
   * that starts more than it may shows them too, whatever the timing.
   */
  blobHold?: { until: number; maxMs: number };
}

export interface RecordedRequest { method: string; path: string; range?: string }

export interface RunningProxy {
  address: string;
  requests: RecordedRequest[];
  tokenRequests: { scope: string; authorized: boolean }[];
  blobGets(digest: string): number;
  /** The most blob GETs that were in flight at once (from the request to the end of the answer). */
  peakBlobGets(): number;
  stop(): Promise<void>;
}

export async function startProxy(opts: ProxyOptions): Promise<RunningProxy> {
  const requests: RecordedRequest[] = [];
  const tokenRequests: { scope: string; authorized: boolean }[] = [];
  const tokens = new Set<string>();
  let cuts = opts.cut?.times ?? 0;
  const sockets = new Set<import("node:net").Socket>();
  let address = "";
  let blobsInFlight = 0, peakBlobs = 0;
  const held = new Set<() => void>();
  const handler: http.RequestListener = (req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname === "/token" && opts.token && req.method === "POST") {
      // OAuth2 refresh-token grant (docker "identity token").
      let body = "";
      req.on("data", (c: Buffer) => { body += c.toString(); });
      req.on("end", () => {
        const form = new URLSearchParams(body);
        const ok = form.get("grant_type") === "refresh_token" && !!opts.token!.refreshToken && form.get("refresh_token") === opts.token!.refreshToken;
        tokenRequests.push({ scope: form.get("scope") ?? "", authorized: ok });
        if (!ok) { res.writeHead(401).end(); return; }
        const t = randomBytes(12).toString("hex");
        tokens.add(t);
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ access_token: t, expires_in: 300 }));
      });
      return;
    }
    if (url.pathname === "/token" && opts.token) {
      const want = "Basic " + Buffer.from(`${opts.token.username}:${opts.token.password}`).toString("base64");
      const ok = req.headers.authorization === want || (!!opts.token.anonymous && !req.headers.authorization);
      tokenRequests.push({ scope: url.searchParams.get("scope") ?? "", authorized: ok });
      if (!ok) { res.writeHead(401).end(); return; }
      const t = randomBytes(12).toString("hex");
      tokens.add(t);
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ [opts.token.field ?? "token"]: t, expires_in: opts.token.expiresIn ?? 300 }));
      return;
    }
    requests.push({ method: req.method ?? "GET", path: url.pathname, ...(req.headers.range ? { range: req.headers.range } : {}) });
    if (opts.failWith) { res.writeHead(opts.failWith).end(); return; }
    if (opts.token) {
      const auth = req.headers.authorization ?? "";
      if (!auth.startsWith("Bearer ") || !tokens.has(auth.slice(7))) {
        const repo = /^\/v2\/(.+)\/(manifests|blobs)\//.exec(url.pathname)?.[1] ?? "";
        res.writeHead(401, { "www-authenticate": `Bearer realm="${opts.tls ? "https" : "http"}://${address}/token",service="berth-test",scope="repository:${repo}:pull"` }).end();
        return;
      }
    }
    const isBlob = (d?: string) => !!d && req.method === "GET" && url.pathname.endsWith(`/blobs/${d}`);
    if (req.method === "GET" && url.pathname.includes("/blobs/")) {
      peakBlobs = Math.max(peakBlobs, ++blobsInFlight);
      res.on("close", () => { blobsInFlight--; });
      const hold = opts.blobHold;
      if (hold) {
        const go = () => { if (held.delete(go)) { clearTimeout(timer); pass(req, res, isBlob); } };
        const timer = setTimeout(go, hold.maxMs);
        held.add(go);
        if (blobsInFlight >= hold.until) for (const g of [...held]) g();
        return;
      }
    }
    pass(req, res, isBlob);
  };
  const pass = (req: http.IncomingMessage, res: http.ServerResponse, isBlob: (d?: string) => boolean) => {
    const headers = { ...req.headers };
    delete headers.authorization;
    const up = http.request({ host: opts.upstream.split(":")[0], port: Number(opts.upstream.split(":")[1]), method: req.method, path: req.url, headers }, (ur) => {
      if (opts.stall && [opts.stall.digest].flat().some((d) => isBlob(d))) {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.destroy();
        return; // never send the body
      }
      if (opts.cut && isBlob(opts.cut.digest) && cuts > 0 && !req.headers.range) {
        cuts--;
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        let sent = 0;
        ur.on("data", (c: Buffer) => {
          if (sent >= opts.cut!.afterBytes) return;
          const part = c.subarray(0, opts.cut!.afterBytes - sent);
          sent += part.length;
          res.write(part);
          if (sent >= opts.cut!.afterBytes) { ur.destroy(); setTimeout(() => res.socket?.destroy(), 20); }
        });
        return;
      }
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on("error", () => res.destroy());
    req.pipe(up);
  };
  const server = opts.tls ? https.createServer({ key: opts.tls.key, cert: opts.tls.cert }, handler) : http.createServer(handler);
  server.on("connection", (s) => { sockets.add(s); s.on("close", () => sockets.delete(s)); });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  address = `127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    address, requests, tokenRequests,
    blobGets: (d) => requests.filter((r) => r.method === "GET" && r.path.endsWith(`/blobs/${d}`)).length,
    peakBlobGets: () => peakBlobs,
    stop: () => new Promise((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  };
}
