// The RPC tables: one module per RPC, registered here by its lowerCamel name.
// A method missing from a table answers UNIMPLEMENTED naming the RPC.
import type { ImageImplementations, RuntimeImplementations } from "./rpc.ts";
import { runtimeConfig } from "./runtime/runtime-config.ts";
import { status } from "./runtime/status.ts";
import { updateRuntimeConfig } from "./runtime/update-runtime-config.ts";
import { version } from "./runtime/version.ts";
import { runPodSandbox } from "./runtime/sandbox-run.ts";
import { stopPodSandbox } from "./runtime/sandbox-stop.ts";
import { removePodSandbox } from "./runtime/sandbox-remove.ts";
import { podSandboxStatus } from "./runtime/sandbox-status.ts";
import { listPodSandbox } from "./runtime/sandbox-list.ts";

export const runtimeImplementations: RuntimeImplementations = {
  version,
  status,
  runtimeConfig,
  updateRuntimeConfig,
  runPodSandbox,
  stopPodSandbox,
  removePodSandbox,
  podSandboxStatus,
  listPodSandbox,
};

export const imageImplementations: ImageImplementations = {};
