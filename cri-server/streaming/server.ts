// berth's streaming server: GET/POST /exec/TOKEN, /attach/TOKEN and
// /portforward/TOKEN, upgraded to SPDY/3.1 or WebSocket. Tokens are single
// use; each session is independent (a bad frame or an idle timeout closes
// only its own session).

import { readFile } from "node:fs/promises";
import type http from "node:http";
import type * as Https from "node:https";
import type { AddressInfo, Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { WebSocketServer, WebSocket } from "ws";
import { log as rootLog, type Logger } from "../../oci-runtime/foundation/log.ts";
import { requirePackage } from "../../oci-runtime/foundation/builtins.ts";
import type { StreamingBackend } from "./backend.ts";
import {
  ACCEPTED_PROTOCOLS_HEADER, PORT_FORWARD_PROTOCOLS, REMOTE_COMMAND_PROTOCOLS, STREAM_PROTOCOL_HEADER,
  WS_PORT_FORWARD_PROTOCOLS, WS_REMOTE_COMMAND_PROTOCOLS, WsProtocol, headerList, negotiate,
} from "./protocol.ts";
import { SpdyConnection, type SpdyLimits } from "./spdy/connection.ts";
import { servePortForwardSpdy } from "./spdy-port-forward.ts";
import { serveRemoteCommandSpdy } from "./spdy-remote-command.ts";
import { TokenStore, type AttachRequest, type ExecRequest, type PortForwardRequest, type StreamKind, type StreamRequest } from "./tokens.ts";
import { parsePort, portAllowed } from "./spdy-port-forward.ts";

/** Most ports one WebSocket port-forward URL may name (limits.ts, so handlers check it without loading this module). */
import { MAX_WS_PORTS } from "./limits.ts";
export { MAX_WS_PORTS };
/**
 * Largest WebSocket message a client may send (the ws library closes the session with 1009 beyond it).
 * Kubernetes clients send stdin and port-forward data in 32 KiB pieces; as SPDY's DATA frame limit.
 */
export const WS_MAX_MESSAGE_BYTES = 1024 * 1024;
import { servePortForwardWs, serveRemoteCommandWs } from "./ws-session.ts";

export interface StreamingServerOptions {
  backend: StreamingBackend;
  /** Listen address (default 127.0.0.1). */
  address?: string;
  /** Listen port (default 0: a free port). */
  port?: number;
  /** PEM certificate and key files; both set means HTTPS. */
  tlsCertFile?: string;
  tlsKeyFile?: string;
  /** Token lifetime (default 60 s). */
  tokenTtlMs?: number;
  /** A session without traffic for this long is closed (default 4 h). */
  idleTimeoutMs?: number;
  /** How long to wait for a client's streams after the upgrade (default 30 s). */
  streamCreationTimeoutMs?: number;
  /** Host[:port] put in returned URLs instead of the bound address (e.g. when listening on 0.0.0.0). */
  advertiseAddress?: string;
  /** Overrides of the SPDY session limits (DEFAULT_SPDY_LIMITS). */
  spdyLimits?: Partial<SpdyLimits>;
  log?: Logger;
}

export type RequestFor<K extends StreamKind> =
  K extends "exec" ? ExecRequest : K extends "attach" ? AttachRequest : PortForwardRequest;

const KINDS: readonly StreamKind[] = ["exec", "attach", "portforward"];

/** Parses "/exec/TOKEN" (optionally with a query); undefined for any other path. */
export function parseStreamPath(url: string): { kind: StreamKind; token: string; query: URLSearchParams } | undefined {
  const u = new URL(url, "http://x");
  const m = /^\/([a-z]+)\/([A-Za-z0-9_-]+)\/?$/.exec(u.pathname);
  if (!m || !KINDS.includes(m[1] as StreamKind)) return undefined;
  return { kind: m[1] as StreamKind, token: m[2]!, query: u.searchParams };
}

function rawResponse(socket: Duplex, status: number, reason: string, body: string, headers: [string, string][] = []): void {
  const lines = [`HTTP/1.1 ${status} ${reason}`, "Content-Type: text/plain; charset=utf-8", `Content-Length: ${Buffer.byteLength(body)}`, "Connection: close", ...headers.map(([k, v]) => `${k}: ${v}`)];
  socket.end(lines.join("\r\n") + "\r\n\r\n" + body);
}

export class StreamingServer {
  readonly tokens: TokenStore;
  #opts: StreamingServerOptions;
  #log: Logger;
  #server: http.Server | undefined;
  #wsProtocol = new WeakMap<http.IncomingMessage, string>();
  /**
   * Made at the first WebSocket upgrade: the ws package loads node:https, node:tls and node:crypto
   * (with OpenSSL's set-up, about 3 MB of RSS), which SPDY sessions never need.
   */
  #wssMade: WebSocketServer | undefined;
  #sockets = new Set<Socket | Duplex>();
  #scheme = "http";
  #idleMs: number;
  #streamTimeoutMs: number;

  constructor(opts: StreamingServerOptions) {
    this.#opts = opts;
    this.#log = (opts.log ?? rootLog).child({ component: "streaming" });
    this.tokens = new TokenStore({ ttlMs: opts.tokenTtlMs ?? 60_000 });
    this.#idleMs = opts.idleTimeoutMs ?? 4 * 3600_000;
    this.#streamTimeoutMs = opts.streamCreationTimeoutMs ?? 30_000;
  }

  get #wss(): WebSocketServer {
    if (!this.#wssMade) {
      const ws = requirePackage<typeof import("ws")>("ws");
      this.#wssMade = new ws.WebSocketServer({
        noServer: true,
        perMessageDeflate: false,
        maxPayload: WS_MAX_MESSAGE_BYTES,
        handleProtocols: (_offered, req) => this.#wsProtocol.get(req) || false,
      });
    }
    return this.#wssMade;
  }

  async start(): Promise<void> {
    const { tlsCertFile, tlsKeyFile } = this.#opts;
    if (Boolean(tlsCertFile) !== Boolean(tlsKeyFile)) throw new Error("streaming tls needs both a certificate and a key file");
    let server: http.Server;
    if (tlsCertFile && tlsKeyFile) {
      const [cert, key] = await Promise.all([readFile(tlsCertFile), readFile(tlsKeyFile)]);
      // node:https (and node:tls and node:crypto behind it) only for a TLS streaming server.
      server = (process.getBuiltinModule("node:https") as typeof Https).createServer({ cert, key });
      this.#scheme = "https";
    } else {
      server = process.getBuiltinModule("node:http").createServer();
    }
    server.on("request", (req, res) => this.#onRequest(req, res));
    server.on("upgrade", (req, socket, head) => this.#onUpgrade(req, socket, head));
    server.on("clientError", (_err, socket) => socket.destroy());
    server.on("connection", (s: Socket) => { this.#sockets.add(s); s.once("close", () => this.#sockets.delete(s)); });
    server.on("secureConnection", (s: Socket) => { this.#sockets.add(s); s.once("close", () => this.#sockets.delete(s)); });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.#opts.port ?? 0, this.#opts.address ?? "127.0.0.1", () => { server.off("error", reject); resolve(); });
    });
    this.#server = server;
    this.#log.info("streaming server listening", { url: this.baseUrl });
  }

  /** Closes the listener and every open session. */
  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const s of this.#sockets) s.destroy();
    for (const ws of this.#wssMade?.clients ?? []) ws.terminate();
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }

  get address(): AddressInfo {
    const a = this.#server?.address();
    if (!a || typeof a === "string") throw new Error("streaming server is not listening");
    return a;
  }

  get baseUrl(): string {
    const a = this.address;
    const host = this.#opts.advertiseAddress ?? (a.family === "IPv6" ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`);
    return `${this.#scheme}://${host}`;
  }

  /** Issues a single-use token for the request and returns the URL the RPC answers with. */
  getUrl<K extends StreamKind>(kind: K, request: RequestFor<K>): string {
    const token = this.tokens.issue({ kind, request } as StreamRequest);
    return `${this.baseUrl}/${kind}/${token}`;
  }

  #onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const route = req.url ? parseStreamPath(req.url) : undefined;
    const text = (status: number, body: string) => { res.writeHead(status, { "Content-Type": "text/plain; charset=utf-8" }); res.end(body); };
    if (!route || (req.method !== "GET" && req.method !== "POST")) return text(404, "not found\n");
    if (!this.tokens.consume(route.token, route.kind)) return text(404, "not found\n");
    text(400, "unable to upgrade: missing upgrade headers in request\n");
  }

  #onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on("error", () => socket.destroy());
    const route = req.url ? parseStreamPath(req.url) : undefined;
    if (!route || (req.method !== "GET" && req.method !== "POST")) return rawResponse(socket, 404, "Not Found", "not found\n");
    const found = this.tokens.consume(route.token, route.kind);
    if (!found) return rawResponse(socket, 404, "Not Found", "not found\n");
    const upgrade = (req.headers.upgrade ?? "").toLowerCase();
    if (upgrade === "websocket") return this.#upgradeWs(req, socket, head, found, route.query);
    const connection = headerList(req.headers.connection).map((v) => v.toLowerCase());
    if (upgrade !== "spdy/3.1" || !connection.includes("upgrade")) {
      return rawResponse(socket, 400, "Bad Request", "unable to upgrade: missing upgrade headers in request\n");
    }
    this.#upgradeSpdy(req, socket as Socket, head, found);
  }

  #upgradeSpdy(req: http.IncomingMessage, socket: Socket, head: Buffer, found: StreamRequest): void {
    const server = found.kind === "portforward" ? PORT_FORWARD_PROTOCOLS : REMOTE_COMMAND_PROTOCOLS;
    const offered = headerList(req.headersDistinct[STREAM_PROTOCOL_HEADER.toLowerCase()]);
    let protocol = negotiate(offered, server);
    if (protocol === undefined) {
      const body = `unable to upgrade: unable to negotiate protocol: client supports ${JSON.stringify(offered)}, server accepts ${JSON.stringify(server)}\n`;
      return rawResponse(socket, 403, "Forbidden", body, server.map((p) => [ACCEPTED_PROTOCOLS_HEADER, p]));
    }
    if (protocol === "") protocol = server[server.length - 1]!;
    socket.write(["HTTP/1.1 101 Switching Protocols", "Connection: Upgrade", "Upgrade: SPDY/3.1", `${STREAM_PROTOCOL_HEADER}: ${protocol}`, "", ""].join("\r\n"));
    if (head.length > 0) socket.unshift(head);
    socket.setNoDelay?.(true);
    const conn = new SpdyConnection(socket, { isServer: true, idleTimeoutMs: this.#idleMs, ...(this.#opts.spdyLimits ? { limits: this.#opts.spdyLimits } : {}) });
    const log = this.#log.child({ session: found.kind, protocol: `spdy/${protocol}` });
    conn.on("protocolError", (err: Error) => log.info("closing spdy session on a protocol error", { err }));
    conn.on("limit", (err: Error) => log.warn("spdy client went over a limit", { err }));
    const common = { conn, backend: this.#opts.backend, log, streamCreationTimeoutMs: this.#streamTimeoutMs };
    const done = found.kind === "portforward"
      ? servePortForwardSpdy({ ...common, request: found.request })
      : serveRemoteCommandSpdy({ ...common, protocol, target: found });
    done.catch((err: unknown) => {
      log.info("streaming session ended with an error", { err });
      conn.destroy(err instanceof Error ? err : undefined);
    });
  }

  #upgradeWs(req: http.IncomingMessage, socket: Duplex, head: Buffer, found: StreamRequest, query: URLSearchParams): void {
    const server = found.kind === "portforward" ? WS_PORT_FORWARD_PROTOCOLS : WS_REMOTE_COMMAND_PROTOCOLS;
    const offered = headerList(req.headers["sec-websocket-protocol"]);
    const protocol = negotiate(offered, server);
    if (protocol === undefined) {
      const body = `unable to upgrade: unable to negotiate protocol: client supports ${JSON.stringify(offered)}, server accepts ${JSON.stringify(server)}\n`;
      return rawResponse(socket, 403, "Forbidden", body);
    }
    let ports: number[] = [];
    if (found.kind === "portforward") {
      const q = query.getAll("ports").flatMap((v) => v.split(","));
      if (q.length > MAX_WS_PORTS) return rawResponse(socket, 400, "Bad Request", `port-forward names ${q.length} ports, the limit is ${MAX_WS_PORTS}\n`);
      const bad = q.find((p) => parsePort(p.trim()) === undefined);
      if (bad !== undefined) return rawResponse(socket, 400, "Bad Request", `port-forward: invalid port ${JSON.stringify(bad.slice(0, 32))} in the url\n`);
      ports = q.length > 0 ? q.map((p) => parsePort(p.trim())!) : found.request.ports;
      if (ports.length === 0) return rawResponse(socket, 400, "Bad Request", "port-forward needs ports: none in the PortForward request or the url\n");
      const refused = ports.find((p) => !portAllowed(found.request, p));
      if (refused !== undefined) {
        return rawResponse(socket, 403, "Forbidden", `port-forward: port ${refused} is not in the PortForward request (ports ${found.request.ports.join(",")})\n`);
      }
    }
    this.#wsProtocol.set(req, protocol);
    this.#wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      (socket as Socket).setTimeout?.(this.#idleMs, () => ws.terminate());
      const chosen = protocol === "" ? WsProtocol.V1 : protocol;
      const log = this.#log.child({ session: found.kind, protocol: `ws/${chosen}` });
      ws.on("error", (err) => log.info("websocket error", { err }));
      const common = { ws, protocol: chosen, backend: this.#opts.backend, log };
      const done = found.kind === "portforward"
        ? servePortForwardWs({ ...common, request: found.request, ports })
        : serveRemoteCommandWs({ ...common, target: found });
      done.catch((err: unknown) => { log.info("streaming session ended with an error", { err }); ws.terminate(); });
    });
  }
}
