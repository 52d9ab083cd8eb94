// Everything a handler may use, built once by the daemon (cri-server/daemon.ts).
import type { Config } from "./config.ts";
import type { Logger } from "../oci-runtime/foundation/log.ts";
import type { NetworkManager } from "./network/cni.ts";
import type { Sandboxes, SandboxDeps } from "./sandbox/deps.ts";
import type { Containers } from "./container/deps.ts";
import type { ImageService } from "../image-service/image-service.ts";
import type { EventBus, ContainerEvent } from "./events/index.ts";
import type { LazyStreaming } from "./lazy-streaming.ts";

export interface Condition {
  ready: boolean;
  reason?: string;
  message?: string;
}

export interface HandlerFeatures {
  name: string;
  features: { recursiveReadOnlyMounts: boolean; userNamespaces: boolean };
}

export interface Context {
  readonly config: Config;
  /** Path the config was read from ("" when all defaults). */
  readonly configPath: string;
  readonly log: Logger;
  readonly version: string;
  readonly network: NetworkManager;
  /** Sandbox lookups and states. */
  readonly sandboxes: Sandboxes;
  /** What the sandbox lifecycle operations (sandbox/ops/*) are given. */
  readonly sandboxDeps: SandboxDeps;
  /** Container lookups; `containers.deps` is what the container lifecycle operations (container/ops/*) are given. */
  readonly containers: Containers;
  readonly images: ImageService;
  readonly events: EventBus<ContainerEvent>;
  /** The exec/attach/port-forward server, started on the first URL it is asked for. */
  readonly streaming: Pick<LazyStreaming, "getUrl">;
  /** Whether the default OCI runtime and conmon can be run. */
  runtimeReady(): Promise<Condition>;
  /** Whether a CNI network config is present (re-read on every call, cheaply). */
  networkReady(): Condition;
  /** Runtime handlers and their features, for Status. */
  handlerFeatures(): HandlerFeatures[];
}
