// The exec/attach/port-forward streaming server, loaded and started on the first URL an
// Exec, Attach or PortForward asks for. Until then neither the server nor its WebSocket
// library is in memory (about 6 MB of berthd's idle RSS), and nothing listens on the port.
import { access, constants } from "node:fs/promises";
import { unavailable } from "../oci-runtime/foundation/errdefs.ts";
import type { Logger } from "../oci-runtime/foundation/log.ts";
import type { Context } from "./context.ts";
import type { RequestFor, StreamingServer, StreamingServerOptions } from "./streaming/server.ts";
import type { StreamKind } from "./streaming/tokens.ts";

export type LazyStreamingOptions = Omit<StreamingServerOptions, "backend"> & {
  /** The daemon's context (built after this object), for the streaming backend. */
  context: () => Context;
  log: Logger;
};

export class LazyStreaming {
  readonly #opts: LazyStreamingOptions;
  #starting: Promise<StreamingServer> | undefined;
  #stopped = false;

  constructor(opts: LazyStreamingOptions) {
    this.#opts = opts;
  }

  /** Checks at start-up what the first Exec would otherwise trip over: the TLS files are readable. */
  async check(): Promise<void> {
    const { tlsCertFile, tlsKeyFile } = this.#opts;
    if (Boolean(tlsCertFile) !== Boolean(tlsKeyFile)) throw new Error("streaming tls needs both a certificate and a key file");
    for (const f of [tlsCertFile, tlsKeyFile]) if (f) await access(f, constants.R_OK);
  }

  /** Whether the server has been loaded (for tests and logs). */
  get started(): boolean {
    return this.#starting !== undefined;
  }

  /** Starts the server once (a failed start is retried by the next call). */
  #server(): Promise<StreamingServer> {
    if (this.#stopped) return Promise.reject(unavailable("berthd is stopping: the streaming server is closed"));
    this.#starting ??= (async () => {
      const [{ StreamingServer }, { OciStreamingBackend }, { streamTargets }] = await Promise.all([
        import("./streaming/server.ts"), import("./streaming/oci-backend.ts"), import("./streaming-backend.ts"),
      ]);
      const { context, ...rest } = this.#opts;
      const server = new StreamingServer({ ...rest, backend: new OciStreamingBackend(streamTargets(context)) });
      await server.start();
      return server;
    })().catch((err: unknown) => {
      this.#starting = undefined;
      const where = `${this.#opts.address ?? "127.0.0.1"}:${this.#opts.port ?? 0}`;
      throw unavailable(`streaming server on ${where} could not start: ${(err as Error).message}`, err);
    });
    return this.#starting;
  }

  /** Issues a single-use token and returns the URL the RPC answers with. */
  async getUrl<K extends StreamKind>(kind: K, request: RequestFor<K>): Promise<string> {
    const server = await this.#server();
    return server.getUrl(kind, request);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    const starting = this.#starting;
    this.#starting = undefined;
    if (!starting) return;
    const server = await starting.catch(() => undefined);
    await server?.stop();
  }
}
