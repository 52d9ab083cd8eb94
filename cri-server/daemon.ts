// berthd: builds the context, takes the socket lock, serves, and shuts down cleanly.
import { accessSync, constants, mkdirSync, readdirSync, unlinkSync } from "node:fs";
import { dirname, join } from "node:path";
import { ImageService as ImageServiceDesc, RuntimeService as RuntimeServiceDesc } from "../proto/gen/runtime/v1/api_pb.js";
import type { Config } from "./config.ts";
import type { Condition, Context } from "./context.ts";
import { imageImplementations, runtimeImplementations } from "./handlers.ts";
import { acquireLock } from "./lock.ts";
import { log as rootLog, setLogLevel } from "./log.ts";
import { listen, type CriServer } from "./server.ts";

export const BERTH_VERSION = "0.1.0";

/** Finds an executable by name on PATH (or checks an absolute path). */
export function findExecutable(name: string): string | undefined {
  const candidates = name.includes("/") ? [name] : (process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin").split(":").map((d) => join(d, name));
  for (const c of candidates) {
    try { accessSync(c, constants.X_OK); return c; } catch { /* next */ }
  }
  return undefined;
}

function cniConfigPresent(confDir: string): Condition {
  let names: string[] = [];
  try { names = readdirSync(confDir); } catch { /* missing dir = no config */ }
  if (names.some((n) => /\.(conflist|conf|json)$/.test(n))) return { ready: true };
  return { ready: false, reason: "NetworkPluginNotReady", message: `no CNI network config found in ${confDir}` };
}

export interface Daemon {
  readonly ctx: Context;
  readonly server: CriServer;
  stop(): Promise<void>;
}

export async function startDaemon(config: Config, configPath: string): Promise<Daemon> {
  setLogLevel(config.log.level);
  const log = rootLog.child({ component: "berthd" });
  for (const dir of [config.root, config.state, dirname(config.grpc.address)]) mkdirSync(dir, { recursive: true, mode: 0o711 });
  const releaseLock = acquireLock(`${config.grpc.address}.lock`);
  try {
    try { unlinkSync(config.grpc.address); log.info("removed stale socket", { path: config.grpc.address }); } catch { /* none */ }
    const ctx: Context = {
      config,
      configPath,
      log,
      version: BERTH_VERSION,
      settings: { podCidr: "" },
      async runtimeReady() {
        const handler = config.runtime.handlers[config.runtime.default_handler];
        if (!handler || !findExecutable(handler.binary)) {
          return { ready: false, reason: "RuntimeBinaryMissing", message: `OCI runtime ${JSON.stringify(handler?.binary)} for handler ${config.runtime.default_handler} not found` };
        }
        if (!findExecutable(config.runtime.conmon)) {
          return { ready: false, reason: "ConmonMissing", message: `conmon ${JSON.stringify(config.runtime.conmon)} not found` };
        }
        return { ready: true };
      },
      networkReady: () => cniConfigPresent(config.cni.conf_dir),
      handlerFeatures: () => Object.keys(config.runtime.handlers).map((name) => ({
        name,
        features: { recursiveReadOnlyMounts: false, userNamespaces: false },
      })),
    };
    const server = await listen(config.grpc.address, [
      { service: RuntimeServiceDesc, impls: runtimeImplementations as never },
      { service: ImageServiceDesc, impls: imageImplementations as never },
    ], ctx);
    log.info("berthd serving", { socket: config.grpc.address, root: config.root, state: config.state, version: BERTH_VERSION, pid: process.pid });
    let stopping: Promise<void> | undefined;
    return {
      ctx,
      server,
      stop: () => (stopping ??= (async () => {
        log.info("berthd stopping");
        await server.shutdown();
        try { unlinkSync(config.grpc.address); } catch { /* gone */ }
        releaseLock();
        log.info("berthd stopped");
      })()),
    };
  } catch (err) {
    releaseLock();
    throw err;
  }
}
