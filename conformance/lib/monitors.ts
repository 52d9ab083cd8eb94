// The per-container monitors berth supports (config runtime.monitor), for tests that run the same
// behaviour against each: conmon from Debian, and berth's own berth-monitor, built by
// hack/build-helpers.sh next to berth-io.
import { dirname, join } from "node:path";
import { defaultConfig } from "../../cri-server/config.ts";

export const BERTH_MONITOR = join(dirname(defaultConfig().runtime.io_helper), "berth-monitor");

export const MONITORS: readonly { name: "conmon" | "berth"; binary: string }[] = [
  { name: "conmon", binary: "conmon" },
  { name: "berth", binary: BERTH_MONITOR },
];
