// HTTP endpoint for Prometheus: GET /metrics on `[metrics] address`
// ("host:port"; "" disables it; ":port" listens on all interfaces).

import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { invalidArgument } from "../../oci-runtime/foundation/errdefs.ts";
import { type Logger, log as rootLog } from "../../oci-runtime/foundation/log.ts";
import type { BerthMetrics } from "./berth-metrics.ts";

export interface MetricsServerOptions {
  address: string;
  metrics: BerthMetrics;
  log?: Logger;
}

/** Splits "host:port", "[::1]:port" or ":port". */
export function parseHostPort(address: string): { host: string | undefined; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(address);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !Number.isInteger(port) || port > 65535) throw invalidArgument(`metrics address ${JSON.stringify(address)} is not host:port`);
  const host = m[1] ?? m[2];
  return { host: host ? host : undefined, port };
}

export class MetricsServer {
  readonly #opts: MetricsServerOptions;
  readonly #log: Logger;
  #server: Server | undefined;

  constructor(opts: MetricsServerOptions) {
    this.#opts = opts;
    this.#log = opts.log ?? rootLog.child({ component: "metrics" });
  }

  /** Starts listening; resolves to the bound address, or undefined when disabled. */
  async start(): Promise<AddressInfo | undefined> {
    if (!this.#opts.address) return undefined;
    if (this.#server) return this.#server.address() as AddressInfo;
    const { host, port } = parseHostPort(this.#opts.address);
    const server = createServer((req, res) => {
      const path = (req.url ?? "").split("?")[0];
      if (path !== "/metrics") {
        res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
        return;
      }
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end("method not allowed\n");
        return;
      }
      this.#opts.metrics.text().then(
        (body) => res.writeHead(200, { "content-type": this.#opts.metrics.contentType }).end(req.method === "HEAD" ? undefined : body),
        (err: unknown) => {
          this.#log.error("metrics collection failed", { err });
          res.writeHead(500, { "content-type": "text/plain" }).end("metrics collection failed\n");
        },
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => { server.off("error", reject); resolve(); });
    });
    this.#server = server;
    const addr = server.address() as AddressInfo;
    this.#log.info("metrics endpoint listening", { address: `${addr.address}:${addr.port}` });
    return addr;
  }

  async stop(): Promise<void> {
    const s = this.#server;
    if (!s) return;
    this.#server = undefined;
    await new Promise<void>((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections();
    });
  }
}
